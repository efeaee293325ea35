"""Equivalent pairs in the warehouse and how answers score on both kinds (issue 15's storage and rules): the rows
come from real sandbox verdicts, the views are read from a real DuckDB file."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from sinq.game.scoring import figures, score
from sinq.sandbox.verify import Pair, verify_many
from sinq.warehouse.records import content_id, equivalent_pair_rows, merge, relabel_rows, verdict_rows
from sinq.warehouse.store import Warehouse
from tests.conftest import fast_config

ORIGINAL = "def f(x):\n    return abs(x) * 2\n"
RENAMED = "def f(x):\n    doubled = abs(x) + abs(x)\n    return doubled\n"
SIGNED = "def f(x):\n    return x * 2\n"
"""Equal to the original on the non-negative inputs it is fuzzed on, not on negative ones."""


@pytest.mark.parametrize(("kind", "claim", "diverged", "correct", "outcome"), [
    ("inequivalent", False, True, True, "found"),
    ("inequivalent", True, False, False, "missed"),
    ("inequivalent", False, False, False, "wrong_input"),
    ("inequivalent", None, False, False, "no_answer"),
    ("equivalent", True, False, True, "said_yes"),
    ("equivalent", False, False, False, "false_alarm"),
    ("equivalent", False, True, True, "refuted"),
    ("equivalent", None, False, False, "no_answer"),
])
def test_an_answer_scores_by_the_pairs_kind(kind, claim, diverged, correct, outcome) -> None:
    scored = score(kind, claim, diverged)
    assert (scored.correct, scored.outcome, scored.refutes) == (correct, outcome, outcome == "refuted")


def test_scoring_refuses_what_cannot_happen_and_sums_per_kind() -> None:
    with pytest.raises(ValueError, match="unknown pair kind"):
        score("maybe", True, False)
    with pytest.raises(ValueError, match="no input to diverge"):
        score("equivalent", True, True)
    scored = [("equivalent", score("equivalent", True, False)), ("equivalent", score("equivalent", False, False)),
              ("equivalent", score("equivalent", None, False)), ("inequivalent", score("inequivalent", True, False)),
              ("inequivalent", score("inequivalent", False, True))]
    by_kind = figures(scored)
    assert (by_kind["equivalent"].accuracy, by_kind["equivalent"].error_rate) == (pytest.approx(1 / 3),
                                                                                  pytest.approx(1 / 3))
    assert (by_kind["inequivalent"].accuracy, by_kind["inequivalent"].error_rate) == (0.5, 0.5)


def _one(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _answer(pair_id: str, index: int, claim: bool | None, diverged: bool, now: datetime) -> dict:
    return {"answer_id": content_id("answer", pair_id, index), "pair_id": pair_id, "agent_id": "evaluator:test",
            "answer_index": index, "claimed_equivalent": claim, "counted": True, "diverged": diverged, "round": 0,
            "run_id": "run-1", "created_at": now}


def test_equivalent_pairs_are_stored_with_evidence_scored_and_relabelled_when_refuted(local_backend,
                                                                                     tmp_path: Path) -> None:
    config = fast_config()
    now = datetime.now(UTC)
    inputs = ["{'x': 0}", "{'x': 3}", "{'x': 12}"]
    renamed = [Pair(f"r{i}", ORIGINAL, RENAMED, "f", literal) for i, literal in enumerate(inputs)]
    signed = [Pair(f"s{i}", ORIGINAL, SIGNED, "f", literal) for i, literal in enumerate(inputs)]
    verdicts = verify_many(renamed + signed, local_backend, config)
    assert {v.verdict for v in verdicts} == {"same"}
    good = equivalent_pair_rows(list(zip(renamed, verdicts[:3], strict=True)), "construction",
                                ["inline_temporary", "rename_locals"], "generator:test", 0, "p1", "s-1", "run-1", now,
                                config, {"budget": 3})
    weak = equivalent_pair_rows(list(zip(signed, verdicts[3:], strict=True)), "construction", ["algebra"],
                                "generator:test", 0, "p1", "s-2", "run-1", now, config)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.store(merge(good, weak))
    db = warehouse.path
    good_id, weak_id = good["pairs"][0]["pair_id"], weak["pairs"][0]["pair_id"]

    listed = _one(db, "SELECT pair_id, inputs_tried, evidence, transformations FROM equivalent_pairs ORDER BY 1")
    assert sorted(r[0] for r in listed) == sorted([good_id, weak_id])
    assert {r[0]: r[1] for r in listed} == {good_id: 3, weak_id: 3}
    assert _one(db, "SELECT count(*) FROM verified_pairs") == [(0,)], "equivalent pairs are not verified pairs"

    answers = [_answer(good_id, 0, True, False, now), _answer(good_id, 1, False, False, now),
               _answer(weak_id, 0, None, False, now)]
    refuting = Pair("refute", ORIGINAL, SIGNED, "f", "{'x': -4}")
    [diverges] = verify_many([refuting], local_backend, config)
    assert diverges.verdict == "diverges"
    answers.append(_answer(weak_id, 1, False, True, now))
    relabel = relabel_rows(weak_id, verdict_rows(refuting, diverges, "run-1", config.compare, now, config),
                           answers[-1]["answer_id"], "generator:test", 0, "p1", "s-2", "run-1", now)
    warehouse.store(merge({"evaluator_answers": answers}, relabel))

    status = dict(_one(db, "SELECT pair_id, status FROM all_pairs"))
    new_id = relabel["pairs"][0]["pair_id"]
    assert status == {good_id: "equivalent", weak_id: "refuted", new_id: "verified"}
    assert _one(db, "SELECT pair_id, diverging_input FROM verified_pairs") == [(new_id, "{'x': -4}")]
    assert _one(db, "SELECT pair_id, answers, said_yes, false_alarms FROM equivalent_pairs") == [(good_id, 2, 1, 1)]
    [stats] = _one(db, "SELECT verified_pairs, equivalent_pairs, equivalent_answers, evaluator_accuracy_equivalent, "
                       "false_alarm_rate FROM round_stats WHERE round = 0")
    assert stats == (1, 2, 4, 0.5, 0.25)

    with pytest.raises(ValueError, match="not equivalent on every input"):
        equivalent_pair_rows([(refuting, diverges)], "construction", [], "g", 0, "p1", None, "run-1", now, config)
    with pytest.raises(ValueError, match="only a divergence refutes"):
        relabel_rows(good_id, {"verdicts": good["verdicts"][:1]}, None, "g", 0, "p1", None, "run-1", now)


def test_stored_equivalent_pairs_are_rechecked_on_other_literal_types(local_backend, tmp_path: Path) -> None:
    """Issue 26: a stored pair fuzzed equal on ints only (``x * 2`` vs ``x + x``) is refuted by an input of another
    type (None, a dict, a set: two different TypeErrors) under the full verdict rules; a sound one is not."""
    from sinq.tasks.equivalence_recheck import recheck_stored, stored_equivalents

    config = fast_config()
    now = datetime.now(UTC)
    inputs = ["{'x': 0}", "{'x': 3}", "{'x': -2}"]
    doubled = "def f(x):\n    return x + x\n"
    renamed = [Pair(f"r{i}", ORIGINAL, RENAMED, "f", literal) for i, literal in enumerate(inputs)]
    typed = [Pair(f"t{i}", SIGNED, doubled, "f", literal) for i, literal in enumerate(inputs)]
    verdicts = verify_many(renamed + typed, local_backend, config)
    assert {v.verdict for v in verdicts} == {"same"}
    good = equivalent_pair_rows(list(zip(renamed, verdicts[:3], strict=True)), "construction", ["inline_temporary"],
                                "generator:test", 0, "p1", "s-1", "run-1", now, config)
    weak = equivalent_pair_rows(list(zip(typed, verdicts[3:], strict=True)), "construction",
                                ["algebraic_double_seed_typed"], "generator:test", 0, "p2", "s-2", "run-1", now, config)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.store(merge(good, weak))
    good_id, weak_id = good["pairs"][0]["pair_id"], weak["pairs"][0]["pair_id"]

    stored = {p.pair_id: p for p in stored_equivalents(warehouse)}
    assert set(stored) == {good_id, weak_id}
    assert sorted(stored[weak_id].inputs) == sorted(inputs) and stored[weak_id].variant == doubled

    found = recheck_stored(warehouse, local_backend, config=config)
    assert found.checked == 2 and set(found.refuted) == {weak_id}
    literal, verdict = found.refuted[weak_id]
    assert verdict.verdict == "diverges" and type(ast.literal_eval(literal)["x"]) is not int
    [again] = verify_many([Pair("again", SIGNED, doubled, "f", literal)], local_backend, config)
    assert again.verdict == "diverges"  # what `sinq verify` would say on it
    assert found.verdicts["same"] >= 20 and found.summary()["refuted"] == 1

    # the audit does the same re-check and takes the refuted pair out of equivalent_pairs (and of training)
    from sinq.tasks.audit import audit

    result = audit(warehouse, config)
    assert result["not_reproduced_pairs"] == [weak_id] and result["by_reason"] == {"refuted_cross_type": 1}
    assert result["cross_type"]["pairs"] == 2 and result["cross_type"]["refuted"] == 1
    assert [r[0] for r in _one(warehouse.path, "SELECT pair_id FROM equivalent_pairs")] == [good_id]
    assert dict(_one(warehouse.path, "SELECT pair_id, status FROM all_pairs"))[weak_id] == "not_reproduced"
    skipped = audit(warehouse, config, cross_type=0)
    assert skipped["cross_type"] is None
