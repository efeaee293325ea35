"""What the sampling passes (issue 28) ask the warehouse: the variants a problem already holds (so a new night never
proposes one again), which problems a generator has exhausted, and what one pass added (the nights bench)."""

from __future__ import annotations

from sinq.warehouse.store import Warehouse


def stored_variant_keys(warehouse: Warehouse, problem_ids: list[str]) -> dict[str, list[str]]:
    """Per problem, the normalised AST hash of every variant stored for it: proposed ones (samples, verified or not,
    by any generator in any round or pass) and stored pairs of either kind (after any rewrite), sorted."""
    if not problem_ids or not warehouse.path.exists():
        return {}
    with warehouse.reading() as con:
        rows = con.execute(
            "SELECT problem_id, variant_key FROM samples WHERE variant_key IS NOT NULL "
            "AND problem_id IN (SELECT unnest(?)) UNION "
            "SELECT problem_id, variant_ast_hash FROM pairs WHERE variant_ast_hash IS NOT NULL "
            "AND problem_id IN (SELECT unnest(?))", [problem_ids, problem_ids]).fetchall()
    keys: dict[str, set[str]] = {}
    for problem_id, key in rows:
        keys.setdefault(problem_id, set()).add(key)
    return {problem_id: sorted(found) for problem_id, found in keys.items()}


def exhausted_problems(warehouse: Warehouse, problem_ids: list[str], generator: str, pass_id: str,
                       after: int) -> dict[str, int]:
    """The problems of ``problem_ids`` whose last ``after`` passes by this generator (passes other than
    ``pass_id``, latest first by their first sample) each stored no new unique verified inequivalent pair, with how
    many passes that was. Only earlier passes count, so the answer never changes within a pass (a resumed night
    skips exactly what the first try skipped)."""
    if not problem_ids or not warehouse.path.exists():
        return {}
    with warehouse.reading() as con:
        rows = con.execute(
            "WITH tried AS (SELECT s.problem_id, coalesce(s.pass_id, '') AS pass_id, min(s.created_at) AS first_at, "
            "count(DISTINCT p.pair_id) FILTER (WHERE p.duplicate_of IS NULL "
            "AND coalesce(p.pair_kind, 'inequivalent') = 'inequivalent') AS unique_pairs "
            "FROM samples s LEFT JOIN pairs p ON p.sample_id = s.sample_id "
            "WHERE s.agent_id = ? AND coalesce(s.pass_id, '') <> ? AND s.problem_id IN (SELECT unnest(?)) "
            "GROUP BY 1, 2), "
            "recent AS (SELECT *, row_number() OVER (PARTITION BY problem_id ORDER BY first_at DESC, pass_id DESC) "
            "AS k FROM tried) "
            "SELECT problem_id, count(*) FROM recent WHERE k <= ? GROUP BY 1 "
            "HAVING count(*) = ? AND sum(unique_pairs) = 0 ORDER BY 1",
            [generator, pass_id, problem_ids, after, after]).fetchall()
    return dict(rows)


def pass_figures(warehouse: Warehouse, run_id: str, pass_id: str, generator: str) -> dict:
    """What a pass holds for this generator (its samples, new unique verified pairs and duplicates, across every run
    of the pass, so a rerun reports the night, not only what it added) and its skipped problems."""
    with warehouse.reading() as con:
        samples, problems = con.execute(
            "SELECT count(*), count(DISTINCT problem_id) FROM samples WHERE pass_id = ? AND agent_id = ?",
            [pass_id, generator]).fetchall()[0]
        unique, duplicates = con.execute(
            "SELECT count(*) FILTER (WHERE p.duplicate_of IS NULL), count(*) FILTER (WHERE p.duplicate_of IS NOT NULL) "
            "FROM pairs p JOIN samples s USING (sample_id) WHERE s.pass_id = ? AND s.agent_id = ? "
            "AND coalesce(p.pair_kind, 'inequivalent') = 'inequivalent'", [pass_id, generator]).fetchall()[0]
        exhausted = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE run_id = ?) FROM exhausted_problems WHERE pass_id = ? "
            "AND generator_agent_id = ?", [run_id, pass_id, generator]).fetchall()[0]
        passes = con.execute("SELECT count(DISTINCT coalesce(pass_id, '')) FROM samples WHERE agent_id = ?",
                             [generator]).fetchall()[0][0]
    return {"pass_id": pass_id, "problems": problems, "samples": samples, "unique_pairs": unique,
            "duplicates": duplicates, "exhausted_problems": exhausted[0], "exhausted_now": exhausted[1],
            "passes": passes}


def verified_pair_count(warehouse: Warehouse) -> int:
    """Every standing verified pair the warehouse holds (``verified_pairs``): the nights' cumulative figure."""
    with warehouse.reading() as con:
        return con.execute("SELECT count(*) FROM verified_pairs").fetchall()[0][0]
