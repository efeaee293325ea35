"""Named queries the stages ask (what is done, what is pending, what a run added), answering with dicts or domain
objects, never positional rows: the SQL of the pipeline lives here, behind warehouse/."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from sinq.sources.problem import Problem
from sinq.warehouse.store import Warehouse


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict:
    return _dicts(con.execute(sql, params))[0]


# ---- problems and their validation
def stored_and_validated(warehouse: Warehouse, ids: list[str], key: str) -> tuple[set[str], dict[str, dict]]:
    """Which of ``ids`` are stored, and the latest validation of each under ``key`` (status, reason, run_id)."""
    if not warehouse.path.exists() or not ids:
        return set(), {}
    with warehouse.reading() as con:
        stored = {r[0] for r in con.execute(
            "SELECT problem_id FROM problems WHERE problem_id IN (SELECT unnest(?))", [ids]).fetchall()}
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'validations'"
                           ).fetchall()[0][0]:
            return stored, {}
        latest = _dicts(con.execute(
            "SELECT problem_id, status, reason, run_id FROM validations WHERE validation_key = ? "
            "AND problem_id IN (SELECT unnest(?)) QUALIFY row_number() OVER (PARTITION BY problem_id "
            "ORDER BY created_at DESC, run_id) = 1", [key, ids]))
    return stored, {row.pop("problem_id"): row for row in latest}


def problems(warehouse: Warehouse, ids: list[str]) -> list[Problem]:
    """The stored problems of ``ids``, in that order (unknown ids are left out)."""
    with warehouse.reading() as con:
        rows = _dicts(con.execute(
            "SELECT problem_id, source, source_id, code, tests, entry_point, text, setup_code, split, licence, "
            "signature, seed_inputs FROM problems WHERE problem_id IN (SELECT unnest(?))", [ids]))
    by_id = {r["problem_id"]: Problem(
        source=r["source"], source_id=r["source_id"], code=r["code"], tests=r["tests"], entry_point=r["entry_point"],
        text=r["text"] or "", setup_code=r["setup_code"] or "", split=r["split"] or "train", licence=r["licence"],
        signature=r["signature"], seed_inputs=json.loads(r["seed_inputs"] or "[]"), problem_id=r["problem_id"])
        for r in rows}
    return [by_id[i] for i in ids if i in by_id]


# ---- the game
def generated_problems(warehouse: Warehouse, ids: list[str], generator: str, round_: int,
                       difficulty: int) -> set[str]:
    """Problems of ``ids`` this generator already has samples for in this round at this target difficulty."""
    with warehouse.reading() as con:
        return {r[0] for r in con.execute(
            "SELECT DISTINCT problem_id FROM samples WHERE agent_id = ? AND round = ? AND target_difficulty = ? "
            "AND problem_id IN (SELECT unnest(?))", [generator, round_, difficulty, ids]).fetchall()}


def unlabelled_pairs(warehouse: Warehouse, ids: list[str], generator: str, round_: int,
                     evaluator: str) -> list[dict]:
    """This round's pairs of these problems the evaluator has not labelled (pair_id, original, variant,
    entry_point, seed_inputs); duplicates never cost the evaluator anything."""
    with warehouse.reading() as con:
        return _dicts(con.execute(
            "SELECT p.pair_id, o.code AS original, v.code AS variant, p.entry_point, pr.seed_inputs FROM pairs p "
            "JOIN programs o ON o.program_id = p.original_program_id "
            "JOIN programs v ON v.program_id = p.variant_program_id "
            "JOIN problems pr ON pr.problem_id = p.problem_id "
            "WHERE p.generator_agent_id = ? AND p.round = ? AND p.problem_id IN (SELECT unnest(?)) "
            "AND p.duplicate_of IS NULL AND NOT EXISTS (SELECT 1 FROM difficulty_labels d WHERE d.pair_id = p.pair_id "
            "AND d.evaluator_agent_id = ? AND d.round = p.round) ORDER BY p.pair_id",
            [generator, round_, ids, evaluator]))


def run_figures(warehouse: Warehouse, run_id: str, generator: str, evaluator: str, round_: int) -> dict:
    """What ``run_id`` added, and the round's totals for this generator/evaluator (the summary users see)."""
    with warehouse.reading() as con:
        figures = _one(con, "SELECT count(*) AS samples, count(*) FILTER (WHERE status = 'valid') AS valid "
                            "FROM samples WHERE run_id = ?", [run_id])
        figures |= _one(con, "SELECT count(*) AS stored, "
                             "(SELECT count(*) FROM verified_pairs v WHERE v.run_id = ?) AS pairs, "
                             "count(*) FILTER (WHERE duplicate_kind = 'exact') AS exact, "
                             "count(*) FILTER (WHERE duplicate_kind = 'near') AS near "
                             "FROM pairs WHERE run_id = ?", [run_id, run_id])
        figures["flagged"] = dict(con.execute(
            "SELECT flag, count(*) FROM (SELECT unnest(from_json(flags, '[\"VARCHAR\"]')) AS flag FROM pairs "
            "WHERE run_id = ? AND duplicate_of IS NULL) GROUP BY 1 ORDER BY 2 DESC, 1", [run_id]).fetchall())
        figures |= _one(con, "SELECT (SELECT count(*) FROM difficulty_labels WHERE run_id = ?) AS labelled, "
                             "count(*) AS answers, count(*) FILTER (WHERE diverged) AS successes "
                             "FROM evaluator_answers WHERE run_id = ?", [run_id, run_id])
        figures["histogram"] = dict(con.execute(
            "SELECT difficulty, count(*) FROM difficulty_labels WHERE run_id = ? GROUP BY 1 ORDER BY 1",
            [run_id]).fetchall())
        figures["reasons"] = con.execute(
            "SELECT reason, count(*) FROM samples WHERE run_id = ? AND reason IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10", [run_id]).fetchall()
        figures |= _one(con, "SELECT count(*) AS total_pairs, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM "
                             "difficulty_labels d WHERE d.pair_id = p.pair_id AND d.evaluator_agent_id = ? AND "
                             "d.round = p.round)) AS total_labelled FROM pairs p "
                             "WHERE generator_agent_id = ? AND round = ? AND duplicate_of IS NULL",
                        [evaluator, generator, round_])
        figures["sources"] = _dicts(con.execute(
            "SELECT pr.source, count(DISTINCT s.problem_id) AS problems, count(*) AS samples, "
            "count(*) FILTER (WHERE s.status = 'valid') AS valid_samples, "
            "count(DISTINCT p.pair_id) FILTER (WHERE p.duplicate_of IS NULL) AS verified_pairs "
            "FROM samples s JOIN problems pr USING (problem_id) "
            "LEFT JOIN pairs p ON p.sample_id = s.sample_id WHERE s.run_id = ? GROUP BY 1 ORDER BY 1",
            [run_id]))
    return figures


def round_curve(warehouse: Warehouse, round_: int) -> dict:
    """``round_stats`` of one round as plain numbers (``{"round": r}`` while it has none)."""
    with warehouse.reading() as con:
        rows = _dicts(con.execute("SELECT * FROM round_stats WHERE round = ?", [round_]))
    curve = rows[0] if rows else {"round": round_}
    return {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
            for k, v in curve.items()}


# ---- runs: liveness
def beat(warehouse: Warehouse, run_id: str, now: datetime) -> None:
    with warehouse.writing() as con:
        con.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ? AND status = 'running'", [now, run_id])


def running_runs(warehouse: Warehouse, silent_since: datetime) -> list[dict]:
    """Every ``running`` run: run_id, kind, host, pid, and whether it has been silent since ``silent_since``."""
    if not warehouse.path.exists():
        return []
    with warehouse.reading() as con:
        has_identity = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'runs' "
                                   "AND column_name = 'pid'").fetchall()[0][0]
        identity = "host, pid, coalesce(heartbeat_at, started_at) < ? AS silent" if has_identity else \
            "NULL AS host, NULL AS pid, started_at < ? AS silent"
        return _dicts(con.execute(f"SELECT run_id, kind, {identity} FROM runs WHERE status = 'running'",
                                  [silent_since]))


def mark_crashed(warehouse: Warehouse, run_ids: list[str], message: str, now: datetime) -> None:
    """Only ``status``, ``finished_at`` and ``error`` change, and only on runs still ``running``."""
    with warehouse.writing() as con:
        con.execute("UPDATE runs SET status = 'crashed', finished_at = ?, error = ? WHERE status = 'running' "
                    "AND run_id IN (SELECT unnest(?))", [now, message, run_ids])
