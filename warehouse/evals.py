"""Named queries over ``eval_runs`` and ``eval_results`` (migration 4): store an evaluation with every query's
outcome, read one back, and line two runs up item by item so that they can be compared pairwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sinq.warehouse.store import Warehouse, WarehouseError

RUN_COLUMNS = ("eval_id", "suite", "suite_version", "model", "adapter", "role", "mode", "sampling", "seeds", "n",
               "metrics", "items_hash", "code_version", "detail", "created_at")
JSON_COLUMNS = {"sampling", "seeds", "metrics", "detail"}


def store_eval(warehouse: Warehouse, run: dict, results: list[dict]) -> str:
    """One transaction: the run row and its results (``item_id``, ``query_index``, ``correct``, ``score``,
    ``detail``). A re-stored eval id is a no-op."""
    row = {key: run.get(key) for key in RUN_COLUMNS}
    row["created_at"] = row["created_at"] or datetime.now(UTC)
    for key in JSON_COLUMNS:
        row[key] = json.dumps(row[key], sort_keys=True, default=str)
    rows = [{"eval_id": row["eval_id"], "item_id": r["item_id"], "query_index": int(r.get("query_index", 0)),
             "correct": None if r.get("correct") is None else bool(r["correct"]),
             "score": None if r.get("score") is None else float(r["score"]),
             "detail": json.dumps(r.get("detail") or {}, sort_keys=True, default=str)} for r in results]
    warehouse.store({"eval_runs": [row], "eval_results": rows})
    return row["eval_id"]


def _decode(row: dict) -> dict:
    for key in JSON_COLUMNS & row.keys():
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


def read_eval(warehouse: Warehouse, eval_id: str, results: bool = True) -> dict:
    """The run row (JSON decoded) and, unless ``results=False``, its results ordered by item and query."""
    if not warehouse.path.exists():
        raise WarehouseError(f"no warehouse at {warehouse.path} (set --db or SINQ_DB)")
    with warehouse.reading() as con:
        cursor = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM eval_runs WHERE eval_id = ?", [eval_id])
        found = cursor.fetchall()
        if not found:
            raise KeyError(eval_id)
        run = _decode(dict(zip(RUN_COLUMNS, found[0], strict=True)))
        if results:
            rows = con.execute("SELECT item_id, query_index, correct, score, detail FROM eval_results "
                               "WHERE eval_id = ? ORDER BY item_id, query_index", [eval_id]).fetchall()
            run["results"] = [_decode(dict(zip(("item_id", "query_index", "correct", "score", "detail"), r,
                                               strict=True))) for r in rows]
    return run


def list_evals(warehouse: Warehouse, suite: str | None = None) -> list[dict]:
    """Every eval run (newest last), without results."""
    if not warehouse.path.exists():
        return []
    sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM eval_runs" + (" WHERE suite = ?" if suite else "")
    with warehouse.reading() as con:
        rows = con.execute(sql + " ORDER BY created_at, eval_id", [suite] if suite else []).fetchall()
    return [_decode(dict(zip(RUN_COLUMNS, r, strict=True))) for r in rows]


def paired_outcomes(warehouse: Warehouse, eval_a: str, eval_b: str) -> list[dict]:
    """The queries both runs scored (same item, same query index), with each run's ``correct`` and ``score``:
    the material of McNemar's test and the paired bootstrap. Queries only one run has are left out."""
    with warehouse.reading() as con:
        rows = con.execute(
            "SELECT a.item_id, a.query_index, a.correct, b.correct, a.score, b.score "
            "FROM eval_results a JOIN eval_results b USING (item_id, query_index) "
            "WHERE a.eval_id = ? AND b.eval_id = ? ORDER BY a.item_id, a.query_index", [eval_a, eval_b]).fetchall()
    return [{"item_id": r[0], "query_index": r[1], "correct_a": r[2], "correct_b": r[3], "score_a": r[4],
             "score_b": r[5]} for r in rows]


# ---- frozen evaluation sets (the game suite, migration 6)
SET_COLUMNS = ("set_id", "suite", "name", "content_hash", "pairs", "problems", "detail", "created_at")
SET_PAIR_COLUMNS = ("position", "pair_id", "item_id", "problem_id", "source", "entry_point", "original_code",
                    "variant_code", "diverging_input", "difficulty", "seed_inputs")


def held_out_candidates(warehouse: Warehouse) -> list[dict]:
    """Every verified, unflagged pair with what a frozen set copies (its problem's split and seed inputs too): the
    material `sinq eval freeze` chooses from."""
    if not warehouse.path.exists():
        return []
    with warehouse.reading() as con:
        cursor = con.execute(
            "SELECT v.pair_id, v.problem_id, v.source, v.entry_point, v.original_code, v.variant_code, "
            "v.diverging_input, v.difficulty, v.split, pr.seed_inputs FROM verified_pairs v "
            "JOIN problems pr USING (problem_id) WHERE v.flags = '[]' ORDER BY v.pair_id")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    for row in rows:
        row["seed_inputs"] = json.loads(row["seed_inputs"] or "[]")
    return rows


def held_out_equivalent_candidates(warehouse: Warehouse) -> list[dict]:
    """Every standing, unflagged equivalent pair (issue 15: fuzzed equal, never refuted) with its problem's split
    and seed inputs: the equivalent half the ``equivalence`` suite freezes from (the inequivalent half is
    ``held_out_candidates``)."""
    if not warehouse.path.exists():
        return []
    with warehouse.reading() as con:
        cursor = con.execute(
            "SELECT e.pair_id, e.problem_id, e.source, e.entry_point, e.original_code, e.variant_code, e.split, "
            "e.inputs_tried, pr.seed_inputs FROM equivalent_pairs e JOIN problems pr USING (problem_id) "
            "JOIN pairs p USING (pair_id) WHERE coalesce(CAST(p.flags AS VARCHAR), '[]') = '[]' ORDER BY e.pair_id")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    for row in rows:
        row["seed_inputs"] = json.loads(row["seed_inputs"] or "[]")
    return rows


def store_set(warehouse: Warehouse, row: dict, pairs: list[dict]) -> bool:
    """One transaction: the set and its pairs. False when a set with this id (the same content) is stored already."""
    row = {key: row.get(key) for key in SET_COLUMNS}
    row["created_at"] = row["created_at"] or datetime.now(UTC)
    row["detail"] = json.dumps(row["detail"] or {}, sort_keys=True, default=str)
    rows = [{"set_id": row["set_id"], **{k: p.get(k) for k in SET_PAIR_COLUMNS}} for p in pairs]
    for r in rows:
        r["seed_inputs"] = json.dumps(r["seed_inputs"] or [])
    inserted = warehouse.store({"eval_sets": [row], "eval_set_pairs": rows})
    return bool(inserted.get("eval_sets"))


def list_sets(warehouse: Warehouse, suite: str = "game") -> list[dict]:
    """The frozen sets of a suite, oldest first."""
    if not warehouse.path.exists():
        return []
    with warehouse.reading() as con:
        rows = con.execute(f"SELECT {', '.join(SET_COLUMNS)} FROM eval_sets WHERE suite = ? "
                           "ORDER BY created_at, set_id", [suite]).fetchall()
    return [_decode(dict(zip(SET_COLUMNS, r, strict=True))) for r in rows]


def read_set(warehouse: Warehouse, set_id: str) -> dict:
    """A frozen set with its pairs in their frozen order; KeyError when there is none."""
    if not warehouse.path.exists():
        raise KeyError(set_id)
    with warehouse.reading() as con:
        found = con.execute(f"SELECT {', '.join(SET_COLUMNS)} FROM eval_sets WHERE set_id = ?", [set_id]).fetchall()
        if not found:
            raise KeyError(set_id)
        row = _decode(dict(zip(SET_COLUMNS, found[0], strict=True)))
        pairs = con.execute(f"SELECT {', '.join(SET_PAIR_COLUMNS)} FROM eval_set_pairs WHERE set_id = ? "
                            "ORDER BY position", [set_id]).fetchall()
    row["pair_rows"] = [dict(zip(SET_PAIR_COLUMNS, p, strict=True)) for p in pairs]
    for p in row["pair_rows"]:
        p["seed_inputs"] = json.loads(p["seed_inputs"] or "[]")
    return row
