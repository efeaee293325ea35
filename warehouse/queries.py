"""Named queries the stages ask (what is done, what is pending, what a run added), answering with dicts or domain
objects, never positional rows: the SQL of the pipeline lives here, behind warehouse/."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from sinq.sources.problem import Problem
from sinq.warehouse.store import Warehouse, WarehouseError


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
                       difficulty: int, pass_id: str | None = None) -> set[str]:
    """Problems of ``ids`` this generator already has samples for in this round at this target difficulty, in this
    sampling pass (issue 28: a new night asks again; a rerun of the same night finds them done)."""
    with warehouse.reading() as con:
        return {r[0] for r in con.execute(
            "SELECT DISTINCT problem_id FROM samples WHERE agent_id = ? AND round = ? AND target_difficulty = ? "
            "AND pass_id IS NOT DISTINCT FROM ? AND problem_id IN (SELECT unnest(?))",
            [generator, round_, difficulty, pass_id, ids]).fetchall()}


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
                             "count(*) FILTER (WHERE duplicate_kind = 'near') AS near, "
                             "(SELECT count(DISTINCT p.sample_id) FROM pairs p JOIN samples s USING (sample_id) "
                             " WHERE s.run_id = ? AND coalesce(p.pair_kind, 'inequivalent') = 'inequivalent') "
                             "AS verified_samples "
                             "FROM pairs WHERE run_id = ?", [run_id, run_id, run_id])
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


# ---- hygiene (inside the write transaction: ``con`` is the writer's connection)
def codes(con: duckdb.DuckDBPyConnection, program_ids: set[str]) -> dict[str, str]:
    return dict(con.execute("SELECT program_id, code FROM programs WHERE program_id IN (SELECT unnest(?))",
                            [sorted(program_ids)]).fetchall()) if program_ids else {}


def literals(con: duckdb.DuckDBPyConnection, input_ids: set[str]) -> dict[str, str]:
    return dict(con.execute("SELECT input_id, literal FROM inputs WHERE input_id IN (SELECT unnest(?))",
                            [sorted(input_ids)]).fetchall()) if input_ids else {}


def seed_inputs(con: duckdb.DuckDBPyConnection, problem_ids: set[str]) -> dict[str, list]:
    rows = con.execute("SELECT problem_id, seed_inputs FROM problems WHERE problem_id IN (SELECT unnest(?))",
                       [sorted(problem_ids)]).fetchall() if problem_ids else []
    return {problem_id: json.loads(seeds or "[]") for problem_id, seeds in rows}


def pair_marks(con: duckdb.DuckDBPyConnection, pair_ids: set[str], marks: tuple[str, ...]) -> dict[str, dict]:
    """The stored hygiene marks (``marks``: column names) of the pairs of ``pair_ids`` that are stored."""
    if not pair_ids:
        return {}
    rows = _dicts(con.execute(f"SELECT pair_id, {', '.join(marks)} FROM pairs WHERE pair_id IN (SELECT unnest(?))",
                              [sorted(pair_ids)]))
    return {row.pop("pair_id"): row for row in rows}


def stored_pairs(con: duckdb.DuckDBPyConnection, problem_ids: list[str], original_ids: list[str]) -> list[dict]:
    """Every stored pair of these problems (or originals, for pairs without a problem): canonical (non-duplicate)
    ones first, then oldest first; the codes only where a fingerprint may be needed."""
    return _dicts(con.execute(
        "SELECT p.pair_id, p.problem_id, p.original_program_id, p.variant_ast_hash, "
        "coalesce(p.pair_kind, 'inequivalent') AS pair_kind, p.duplicate_of IS NULL AS canonical, "
        "CASE WHEN p.duplicate_of IS NULL OR p.variant_ast_hash IS NULL THEN o.code END AS original, "
        "CASE WHEN p.duplicate_of IS NULL OR p.variant_ast_hash IS NULL THEN v.code END AS variant "
        "FROM pairs p JOIN programs o ON o.program_id = p.original_program_id "
        "JOIN programs v ON v.program_id = p.variant_program_id "
        "WHERE p.problem_id IN (SELECT unnest(?)) "
        "OR (p.problem_id IS NULL AND p.original_program_id IN (SELECT unnest(?))) "
        "ORDER BY p.duplicate_of IS NOT NULL, p.created_at, p.pair_id", [problem_ids, original_ids]))


# ---- audits
STANDING = {"inequivalent": "verified", "equivalent": "equivalent"}
"""The ``all_pairs`` status of a standing pair of each kind: what the views and every training set read."""


def standing_pair_ids(warehouse: Warehouse, kind: str, run_id: str | None = None) -> list[str]:
    """Ids of the standing pairs of one kind (``all_pairs`` status verified | equivalent), of one run or all. Read
    from ``all_pairs``, not the public views: training sets read it, so a pair a view hides (an equivalent pair
    without its evidence row) is audited all the same."""
    if kind not in STANDING:
        raise ValueError(f"not a pair kind: {kind}")
    if not warehouse.path.exists():
        return []
    where, params = (" AND run_id = ?", [run_id]) if run_id else ("", [])
    with warehouse.reading() as con:
        return [r[0] for r in con.execute(f"SELECT pair_id FROM all_pairs WHERE pair_kind = ? AND status = ?{where}",
                                          [kind, STANDING[kind], *params]).fetchall()]


def _id_list(raw: str | None) -> list[str] | None:
    """A stored JSON list of ids; None where it is not one (the audit calls that evidence that does not hold)."""
    try:
        value = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def claims_behind(warehouse: Warehouse, pair_ids: list[str]) -> dict:
    """Every stored fact an audit of these pairs relies on, as stored, ids included, so that the audit checks they
    agree instead of trusting one join: ``pairs`` (ids, codes, the literal of the pair's own input), ``evidence``
    per equivalent pair (verdict_ids and input_ids as lists, None where unreadable; absent without a row),
    ``answers`` (counted ones that claim an input, a verdict or a divergence, with their own input's literal),
    ``verdicts`` by id (programs, input and its literal, verdict, outcomes, compare mode, the run's config) and
    ``seeds``: every hash seed the executions behind those verdicts used."""
    with warehouse.reading() as con:
        pairs = _dicts(con.execute(
            "SELECT p.pair_id, coalesce(p.pair_kind, 'inequivalent') AS pair_kind, p.original_program_id, "
            "p.variant_program_id, p.entry_point, p.input_id, p.verdict_id, o.code AS original, v.code AS variant, "
            "i.literal FROM pairs p JOIN programs o ON o.program_id = p.original_program_id "
            "JOIN programs v ON v.program_id = p.variant_program_id LEFT JOIN inputs i ON i.input_id = p.input_id "
            "WHERE p.pair_id IN (SELECT unnest(?)) ORDER BY p.pair_id", [pair_ids]))
        evidence = {r["pair_id"]: {"verdict_ids": _id_list(r["verdict_ids"]), "input_ids": _id_list(r["input_ids"]),
                                   "inputs_tried": r["inputs_tried"]} for r in _dicts(con.execute(
            "SELECT pair_id, CAST(verdict_ids AS VARCHAR) AS verdict_ids, CAST(input_ids AS VARCHAR) AS input_ids, "
            "inputs_tried FROM equivalence_evidence WHERE pair_id IN (SELECT unnest(?))", [pair_ids]))}
        answers = _dicts(con.execute(
            "SELECT a.answer_id, a.pair_id, a.input_id, a.verdict_id, coalesce(a.diverged, false) AS diverged, "
            "i.literal FROM evaluator_answers a LEFT JOIN inputs i ON i.input_id = a.input_id "
            "WHERE a.counted AND a.pair_id IN (SELECT unnest(?)) AND (a.verdict_id IS NOT NULL "
            "OR a.input_id IS NOT NULL OR coalesce(a.diverged, false)) ORDER BY a.pair_id, a.answer_id", [pair_ids]))
        verdict_ids = sorted({p["verdict_id"] for p in pairs} | {a["verdict_id"] for a in answers if a["verdict_id"]}
                             | {v for e in evidence.values() for v in e["verdict_ids"] or []})
        verdicts = {r["verdict_id"]: r for r in _dicts(con.execute(
            "SELECT vd.verdict_id, vd.original_program_id, vd.variant_program_id, vd.entry_point, vd.input_id, "
            "i.literal, vd.verdict, CAST(vd.original_outcome AS VARCHAR) AS original_outcome, "
            "CAST(vd.variant_outcome AS VARCHAR) AS variant_outcome, vd.compare_mode, "
            "CAST(r.config AS VARCHAR) AS config FROM verdicts vd LEFT JOIN inputs i ON i.input_id = vd.input_id "
            "LEFT JOIN runs r ON r.run_id = vd.run_id WHERE vd.verdict_id IN (SELECT unnest(?))", [verdict_ids]))}
        seeds = {r[0] for r in con.execute(
            "SELECT DISTINCT hash_seed FROM executions WHERE hash_seed IS NOT NULL "
            "AND verdict_id IN (SELECT unnest(?))", [verdict_ids]).fetchall()}
    return {"pairs": pairs, "evidence": evidence, "answers": answers, "verdicts": verdicts, "seeds": seeds}


# ---- training
def training_set(warehouse: Warehouse, snapshot_id: str) -> dict | None:
    with warehouse.reading() as con:
        rows = _dicts(con.execute("SELECT kind, role, path FROM training_sets WHERE snapshot_id = ?", [snapshot_id]))
    return rows[0] if rows else None


def finish_job(warehouse: Warehouse, job_id: str, status: str, metrics: dict, now: datetime) -> None:
    with warehouse.writing() as con:
        con.execute("UPDATE training_jobs SET status = ?, metrics = ?, finished_at = ? WHERE job_id = ?",
                    [status, json.dumps(metrics), now, job_id])


def _rounds(rounds: list[int] | None, column: str) -> tuple[str, list]:
    return ("", []) if rounds is None else (f" AND {column} IN (SELECT unnest(?))", [rounds])


_HYGIENE = ("ap.source, ap.split, ap.duplicate_of, ap.flags, ap.audit_reproduced, ap.status, s.detail, "
            "ap.difficulty")
"""What the training-set builders check on every row (split, duplicates, flags, audits, status, difficulty)."""


def training_pairs(warehouse: Warehouse, rounds: list[int] | None) -> list[dict]:
    """Every labelled pair (all rounds, or these) with its sample, response and hygiene columns: the generator's
    material. Equivalent pairs have no difficulty label, so only inequivalent pairs are here."""
    where, params = _rounds(rounds, "ap.round")
    with warehouse.reading() as con:
        return _dicts(con.execute(
            "SELECT ap.pair_id, ap.problem_id, ap.original_code AS original, ap.entry_point, s.target_difficulty, "
            "ap.variant_code AS variant, ap.diverging_input AS literal, ap.round, ap.run_id, r.text AS response, "
            f"{_HYGIENE}, ap.pair_kind, NULL AS transformations FROM all_pairs ap "
            "JOIN pairs p ON p.pair_id = ap.pair_id "
            "JOIN problems pr ON pr.problem_id = ap.problem_id JOIN samples s ON s.sample_id = p.sample_id "
            "LEFT JOIN llm_responses r ON r.response_id = s.response_id "
            "WHERE ap.difficulty IS NOT NULL" + where + " ORDER BY ap.pair_id", params))


def training_equivalent_pairs(warehouse: Warehouse, rounds: list[int] | None) -> list[dict]:
    """Every pair stored as equivalent (issue 15), whatever its status (the builders leave out or relabel the
    refuted and the not-equal ones), with the same columns as ``training_pairs``: the evaluator's GRPO prompts of
    that kind. ``literal`` is the first input it was fuzzed on (an equal one, not a diverging one)."""
    where, params = _rounds(rounds, "ap.round")
    with warehouse.reading() as con:
        return _dicts(con.execute(
            "SELECT ap.pair_id, ap.problem_id, ap.original_code AS original, ap.entry_point, s.target_difficulty, "
            "ap.variant_code AS variant, ap.diverging_input AS literal, ap.round, ap.run_id, NULL AS response, "
            f"{_HYGIENE}, ap.pair_kind, CAST(e.transformations AS VARCHAR) AS transformations FROM all_pairs ap "
            "JOIN pairs p ON p.pair_id = ap.pair_id JOIN problems pr ON pr.problem_id = ap.problem_id "
            "LEFT JOIN samples s ON s.sample_id = p.sample_id "
            "LEFT JOIN equivalence_evidence e ON e.pair_id = ap.pair_id "
            "WHERE ap.pair_kind = 'equivalent'" + where + " ORDER BY ap.pair_id", params))


def training_answers(warehouse: Warehouse, rounds: list[int] | None) -> list[dict]:
    """Every evaluator answer with its pair, its claim and hygiene columns: the evaluator's material. Answers
    without an input ("Yes", non-answers) are here too (``literal`` NULL), with the pair's stored kind."""
    where, params = _rounds(rounds, "a.round")
    with warehouse.reading() as con:
        return _dicts(con.execute(
            "SELECT a.pair_id, ap.problem_id, ap.original_code AS original, ap.variant_code AS variant, "
            f"ap.entry_point, i.literal, a.diverged, a.claimed_equivalent, a.round, a.run_id, {_HYGIENE}, "
            "ap.pair_kind, CAST(e.transformations AS VARCHAR) AS transformations FROM evaluator_answers a "
            "JOIN all_pairs ap ON ap.pair_id = a.pair_id JOIN pairs p ON p.pair_id = a.pair_id "
            "JOIN problems pr ON pr.problem_id = ap.problem_id "
            "LEFT JOIN samples s ON s.sample_id = p.sample_id LEFT JOIN inputs i ON i.input_id = a.input_id "
            "LEFT JOIN equivalence_evidence e ON e.pair_id = a.pair_id "
            "WHERE true" + where + " ORDER BY a.pair_id, a.answer_index", params))


# ---- evaluation items (decontamination)
def all_problems(warehouse: Warehouse) -> list[dict]:
    with warehouse.reading() as con:
        return _dicts(con.execute("SELECT problem_id, source, source_id, split, code, setup_code FROM problems"))


def item_problem_ids(warehouse: Warehouse, suite: str) -> set[str]:
    with warehouse.reading() as con:
        return {r[0] for r in con.execute("SELECT problem_id FROM eval_items WHERE suite = ? AND problem_id IS NOT "
                                          "NULL", [suite]).fetchall()}


def eval_items(warehouse: Warehouse, item_ids: list[str] | None = None) -> list[dict]:
    where, params = (" WHERE item_id IN (SELECT unnest(?))", [item_ids]) if item_ids is not None else ("", [])
    with warehouse.reading() as con:
        return _dicts(con.execute("SELECT item_id, suite, text, origin, problem_id, ast_hash FROM eval_items"
                                  + where + " ORDER BY item_id", params))


def problem_programs(warehouse: Warehouse, problem_ids: list[str]) -> list[dict]:
    with warehouse.reading() as con:
        return _dicts(con.execute("SELECT problem_id, code, setup_code FROM problems WHERE problem_id IN "
                                  "(SELECT unnest(?))", [problem_ids]))


def pair_codes(warehouse: Warehouse, pair_ids: list[str] | None, problem_ids: list[str]) -> set[str]:
    """Original and variant code of these pairs (or of every pair of these problems)."""
    where, params = (("p.pair_id IN (SELECT unnest(?))", [pair_ids]) if pair_ids is not None
                     else ("p.problem_id IN (SELECT unnest(?))", [problem_ids]))
    with warehouse.reading() as con:
        rows = con.execute(
            "SELECT DISTINCT o.code, v.code FROM pairs p JOIN programs o ON o.program_id = p.original_program_id "
            f"JOIN programs v ON v.program_id = p.variant_program_id WHERE {where}", params).fetchall()
    return {code for row in rows for code in row}


def training_sets(warehouse: Warehouse, snapshot_ids: list[str] | None = None) -> list[dict]:
    where, params = (" WHERE snapshot_id IN (SELECT unnest(?))", [snapshot_ids]) if snapshot_ids is not None \
        else ("", [])
    with warehouse.reading() as con:
        return _dicts(con.execute("SELECT snapshot_id, problem_ids, path FROM training_sets" + where
                                  + " ORDER BY snapshot_id", params))


# ---- the LLM response cache
def cached_responses(warehouse: Warehouse, request_ids: list[str]) -> list[dict]:
    with warehouse.reading() as con:
        return _dicts(con.execute(
            "SELECT request_id, choice_index, text, finish_reason, prompt_tokens, completion_tokens "
            "FROM llm_responses WHERE request_id IN (SELECT unnest(?)) ORDER BY request_id, choice_index",
            [request_ids]))


# ---- runs: liveness
def beat(warehouse: Warehouse, run_id: str, now: datetime) -> None:
    with warehouse.writing() as con:
        beat_in(con, run_id, now)


def beat_in(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime) -> None:
    """The heartbeat inside a write already open (a batch's own transaction)."""
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


def check_run(warehouse: Warehouse, run_id: str) -> None:
    """A run the warehouse does not know is a bad argument (exit 2), refused before anything is written or measured:
    an empty export or a figure over zero pairs named after it would look like a run that verified nothing."""
    with warehouse.reading() as con:
        known = con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
    if not known:
        raise WarehouseError(f"no run {run_id!r} in {warehouse.path}", exit_code=2,
                             hint='sinq sql "SELECT run_id, started_at, status FROM runs ORDER BY started_at" '
                                  "lists them")
