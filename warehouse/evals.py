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
