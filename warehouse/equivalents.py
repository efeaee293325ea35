"""Named queries about equivalent pairs (issue 15): what a maker already tried, which equivalent pairs the
evaluator has yet to see, and what a run added of them. Kept beside ``queries`` so the SQL stays behind warehouse/."""

from __future__ import annotations

from sinq.warehouse.queries import _dicts, _one
from sinq.warehouse.store import Warehouse


def tried_problems(warehouse: Warehouse, ids: list[str], maker: str, round_: int) -> set[str]:
    """Problems of ``ids`` this maker already tried in this round (kept or not: a rerun does not try again)."""
    with warehouse.reading() as con:
        return {r[0] for r in con.execute(
            "SELECT DISTINCT problem_id FROM equivalence_attempts WHERE maker_id = ? AND round = ? "
            "AND problem_id IN (SELECT unnest(?))", [maker, round_, ids]).fetchall()}


def for_evaluation(warehouse: Warehouse, ids: list[str], maker: str, round_: int, evaluator: str) -> list[dict]:
    """This round's standing equivalent pairs of these problems (pair_id, problem_id, original, variant,
    entry_point, seed_inputs, answered: whether this evaluator has answered it this round), in pair_id order."""
    with warehouse.reading() as con:
        return _dicts(con.execute(
            "SELECT p.pair_id, p.problem_id, o.code AS original, v.code AS variant, p.entry_point, pr.seed_inputs, "
            "EXISTS (SELECT 1 FROM evaluator_answers e WHERE e.pair_id = p.pair_id AND e.agent_id = ? "
            "AND e.round = p.round) AS answered FROM pairs p "
            "JOIN programs o ON o.program_id = p.original_program_id "
            "JOIN programs v ON v.program_id = p.variant_program_id "
            "JOIN problems pr ON pr.problem_id = p.problem_id "
            "WHERE p.pair_kind = 'equivalent' AND p.generator_agent_id = ? AND p.round = ? "
            "AND p.problem_id IN (SELECT unnest(?)) AND p.duplicate_of IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM pair_relabels r WHERE r.pair_id = p.pair_id) ORDER BY p.pair_id",
            [evaluator, maker, round_, ids]))


def inequivalent_count(warehouse: Warehouse, ids: list[str], generator: str, round_: int) -> int:
    """This round's non-duplicate inequivalent pairs of these problems (answered or not): what the equivalent
    share is a share of, stable across resumed runs."""
    with warehouse.reading() as con:
        return con.execute(
            "SELECT count(*) FROM pairs WHERE coalesce(pair_kind, 'inequivalent') = 'inequivalent' "
            "AND generator_agent_id = ? AND round = ? AND problem_id IN (SELECT unnest(?)) "
            "AND duplicate_of IS NULL", [generator, round_, ids]).fetchall()[0][0]


def run_figures(warehouse: Warehouse, run_id: str) -> dict:
    """What ``run_id`` added of the other half of the game: equivalent pairs made (and standing), the maker's
    attempts and drops by reason, and the evaluator's answers on equivalent pairs (said Yes, false alarms,
    refutations)."""
    with warehouse.reading() as con:
        made = _one(con, "SELECT count(*) AS stored, count(*) FILTER (WHERE status = 'equivalent') AS standing, "
                         "count(DISTINCT problem_id) AS problems FROM all_pairs "
                         "WHERE pair_kind = 'equivalent' AND run_id = ?", [run_id])
        tried = _one(con, "SELECT count(*) AS problems_tried, coalesce(sum(candidates), 0) AS candidates, "
                          "coalesce(sum(fuzzed), 0) AS fuzzed, coalesce(sum(kept), 0) AS kept "
                          "FROM equivalence_attempts WHERE run_id = ?", [run_id])
        drops = dict(con.execute("SELECT reason, sum(candidates) FROM equivalence_drops WHERE run_id = ? "
                                 "GROUP BY 1 ORDER BY 2 DESC, 1", [run_id]).fetchall())
        answers = _one(con, "SELECT count(*) AS answers, count(*) FILTER (WHERE e.claimed_equivalent) AS said_yes, "
                            "count(*) FILTER (WHERE e.claimed_equivalent = false AND NOT coalesce(e.diverged, false))"
                            " AS false_alarms, count(*) FILTER (WHERE e.diverged) AS refuting, "
                            "count(DISTINCT e.pair_id) AS pairs FROM evaluator_answers e JOIN pairs p USING (pair_id) "
                            "WHERE e.run_id = ? AND e.counted AND p.pair_kind = 'equivalent'", [run_id])
        misses = _one(con, "SELECT count(*) AS answers, count(*) FILTER (WHERE e.claimed_equivalent) AS misses "
                           "FROM evaluator_answers e JOIN pairs p USING (pair_id) WHERE e.run_id = ? AND e.counted "
                           "AND coalesce(p.pair_kind, 'inequivalent') = 'inequivalent'", [run_id])
        relabelled = con.execute("SELECT count(*) FROM pair_relabels WHERE run_id = ?", [run_id]).fetchall()[0][0]
    return {"made": made, "tried": tried, "dropped": drops, "answers": answers, "inequivalent": misses,
            "relabelled": relabelled}
