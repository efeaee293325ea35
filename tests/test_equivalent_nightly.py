"""The other half of the game in the nightly run (issue 15): equivalent pairs made by default with their evidence,
every stored input equal again on a fresh ``sinq verify``, the evaluator shown both kinds (the configured share, in
one shuffled order) and scored on each, a refuting "No" relabelling the pair, a rerun adding nothing, and the switch
that turns it all off. Real Prefect server, real sandbox, real DuckDB file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinq.agents.config import AgentsConfig, EquivalenceConfig
from sinq.flows.config import RunConfig
from sinq.settings import Settings
from sinq.warehouse.config import WarehouseConfig
from tests.conftest import fast_config, fresh_verify, read_rows, run_night


def _settings(tmp_path: Path, equivalence: EquivalenceConfig | None = None, **run) -> Settings:
    return Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=tmp_path / "w.duckdb"),
                    agents=AgentsConfig(equivalence=equivalence or EquivalenceConfig()),
                    run=RunConfig(**({"limit": 6, "batch_size": 3, "export_dir": None} | run)))


def _one(db: Path, sql: str, params: list | None = None):
    return read_rows(db, sql, params)[0][0]


@pytest.fixture(scope="module")
def night(prefect_server, local_backend, tmp_path_factory):
    settings = _settings(tmp_path_factory.mktemp("both-kinds"))
    return settings, run_night(settings)


def test_a_night_makes_equivalent_pairs_with_their_evidence(night) -> None:
    settings, summary = night
    db = settings.warehouse.path
    standing = _one(db, "SELECT count(*) FROM equivalent_pairs WHERE run_id = ?", [summary["run_id"]])
    assert summary["equivalent_pairs"] == standing >= 3, "equivalent pairs are made by default"
    assert _one(db, "SELECT count(*) FROM equivalence_attempts") == summary["problems"] == 6, \
        "one attempt row per usable problem"
    assert summary["equivalence"]["problems_tried"] == 6
    assert summary["equivalence"]["pairs_per_problem"] == round(summary["equivalence"]["pairs"] / 6, 4)
    for pair_id, inputs_tried, input_ids, verdict_ids, evidence in read_rows(
            db, "SELECT pair_id, inputs_tried, input_ids, verdict_ids, evidence FROM equivalence_evidence"):
        verdicts = json.loads(verdict_ids)
        assert evidence == "construction" and inputs_tried == len(json.loads(input_ids)) == len(verdicts) >= 1
        kinds = read_rows(db, "SELECT DISTINCT verdict FROM verdicts WHERE verdict_id IN (SELECT unnest(?))",
                          [verdicts])
        assert kinds == [("same",)], f"{pair_id}: every input it was fuzzed on is stored, and equal"
    assert _one(db, "SELECT count(*) FROM verified_pairs v JOIN pairs p USING (pair_id) "
                    "WHERE p.pair_kind = 'equivalent'") == 0, "verified_pairs stays the inequivalent half"
    assert summary["sandbox"]["executions"].get("equivalence", 0) > 0, "the fuzz filter is charged on its own"


def test_the_evaluator_sees_both_kinds_in_the_configured_share(night) -> None:
    settings, summary = night
    db = settings.warehouse.path
    inequivalent = _one(db, "SELECT count(*) FROM pairs WHERE pair_kind = 'inequivalent' AND duplicate_of IS NULL")
    eligible = _one(db, "SELECT count(*) FROM pairs WHERE pair_kind = 'equivalent' AND duplicate_of IS NULL")
    shown = _one(db, "SELECT count(DISTINCT e.pair_id) FROM evaluator_answers e JOIN pairs p USING (pair_id) "
                     "WHERE p.pair_kind = 'equivalent'")
    assert shown == min(eligible, inequivalent), "share 0.5: one equivalent pair per inequivalent one, at most"
    assert _one(db, "SELECT count(*) FROM difficulty_labels d JOIN pairs p USING (pair_id) "
                    "WHERE p.pair_kind = 'equivalent'") == 0, "difficulty is a label of inequivalent pairs"
    yes, no_divergence, answers = read_rows(
        db, "SELECT count(*) FILTER (WHERE claimed_equivalent), count(*) FILTER (WHERE claimed_equivalent = false "
            "AND NOT diverged), count(*) FROM evaluator_answers e JOIN pairs p USING (pair_id) "
            "WHERE p.pair_kind = 'equivalent'")[0]
    assert answers == 4 * shown
    assert summary["false_alarm_rate"] == round(no_divergence / answers, 4)
    assert summary["equivalence"]["said_yes"] == yes
    stats = read_rows(db, "SELECT false_alarm_rate, evaluator_accuracy_equivalent, miss_rate FROM round_stats")[0]
    assert stats[0] == pytest.approx(no_divergence / answers) and stats[1] is not None and stats[2] is not None
    assert summary["answers"] == 4 * summary["evaluated_pairs"], "the success rate stays over inequivalent pairs"


def test_every_stored_equivalent_input_is_equal_on_a_fresh_verify(night, tmp_path) -> None:
    settings, _ = night
    db = settings.warehouse.path
    claims = read_rows(db, "SELECT e.pair_id || ':' || i.input_id, o.code, v.code, p.entry_point, i.literal "
                       "FROM equivalence_evidence e JOIN pairs p USING (pair_id) "
                       "JOIN programs o ON o.program_id = p.original_program_id "
                       "JOIN programs v ON v.program_id = p.variant_program_id, "
                       "unnest(from_json(e.input_ids, '[\"VARCHAR\"]')) AS t(input_id) "
                       "JOIN inputs i ON i.input_id = t.input_id")
    assert len(claims) >= 3
    verdicts = fresh_verify(tmp_path, claims)
    assert len(verdicts) == len(claims)
    assert {v["verdict"] for v in verdicts} == {"same"}, [v for v in verdicts if v["verdict"] != "same"][:3]


def test_a_rerun_makes_and_asks_nothing_again(night) -> None:
    settings, _ = night
    db = settings.warehouse.path
    before = {t: _one(db, f"SELECT count(*) FROM {t}")
              for t in ("equivalence_attempts", "pairs", "evaluator_answers", "equivalence_evidence")}
    again = run_night(settings)
    after = {t: _one(db, f"SELECT count(*) FROM {t}") for t in before}
    assert after == before and again["equivalence"]["problems_tried"] == 0


def test_a_refuting_no_relabels_the_pair(local_backend, tmp_path) -> None:
    """A pair stored as equivalent that is not (``<`` against ``<=``, fuzzed only where they agree): the fuzz
    evaluator's "No" diverges in the sandbox, so the answer is right, the pair is refuted and an inequivalent pair
    with that input takes its place."""
    from sinq.agents.base import EvaluatorRequest
    from sinq.agents.config import AgentConfig
    from sinq.sandbox.verify import Pair, verify_many
    from sinq.tasks import stages
    from sinq.warehouse.records import equivalent_pair_rows
    from sinq.warehouse.store import Warehouse

    settings = _settings(tmp_path)
    warehouse = Warehouse.from_config(settings.warehouse)
    original = "def below(x: int) -> bool:\n    return x < 3\n"
    variant = "def below(x: int) -> bool:\n    return x <= 3\n"
    tried = [Pair("t", original, variant, "below", "{'x': 0}")]
    [verdict] = verify_many(tried, local_backend)
    assert verdict.verdict == "same"
    now = datetime.now(UTC)
    stored = equivalent_pair_rows([(tried[0], verdict)], "construction", ["unsound_lt_to_le"], "maker", 0, None,
                                  None, "run-0", now, settings.sandbox)
    warehouse.store(stored)
    pair_id = stored["pairs"][0]["pair_id"]
    request = EvaluatorRequest(pair_id, original, variant, "below", 4, ["{'x': 0}", "{'x': 5}"])
    work = stages.Work("evaluate", "run-1", AgentConfig(), "evaluator:fuzz", "generator:x", requests=[request],
                       maker_id="maker", kinds={pair_id: "equivalent"})
    played = stages.play_evaluate(settings, work)
    assert played.counts["equivalent"]["relabelled"] == 1
    assert played.rows["difficulty_labels"] == [], "no difficulty for an equivalent pair"
    stages.store_played(settings, played)
    db = settings.warehouse.path
    assert _one(db, "SELECT status FROM all_pairs WHERE pair_id = ?", [pair_id]) == "refuted"
    assert _one(db, "SELECT count(*) FROM equivalent_pairs") == 0
    new_pair, literal = read_rows(db, "SELECT r.new_pair_id, i.literal FROM pair_relabels r JOIN inputs i USING "
                                  "(input_id) WHERE r.pair_id = ?", [pair_id])[0]
    assert _one(db, "SELECT status FROM all_pairs WHERE pair_id = ?", [new_pair]) == "verified"
    assert "3" in literal, "the input that tells < from <= is x = 3"
    refuting = _one(db, "SELECT count(*) FROM evaluator_answers WHERE pair_id = ? AND diverged", [pair_id])
    assert refuting >= 1 and _one(db, "SELECT false_alarm_rate FROM round_stats WHERE round = 0") == 0


def test_the_switch_turns_equivalent_pairs_off(prefect_server, local_backend, tmp_path) -> None:
    settings = _settings(tmp_path, EquivalenceConfig(enabled=False), limit=3)
    summary = run_night(settings)
    db = settings.warehouse.path
    assert summary["verified_pairs"] >= 1
    assert _one(db, "SELECT count(*) FROM pairs WHERE pair_kind = 'equivalent'") == 0
    assert _one(db, "SELECT count(*) FROM equivalence_attempts") == 0
    assert summary["false_alarm_rate"] is None and summary["equivalent_pairs"] == 0


def test_the_export_carries_the_equivalent_half_as_its_own_config(night, tmp_path) -> None:
    import datasets

    from sinq.warehouse.export import export
    from sinq.warehouse.store import Warehouse

    settings, _ = night
    out = tmp_path / "export"
    result = export(Warehouse.from_config(settings.warehouse), out)
    standing = _one(settings.warehouse.path, "SELECT count(*) FROM equivalent_pairs")
    assert result["equivalent_pairs"] == standing >= 3
    cache = str(tmp_path / "hf-cache")  # datasets caches a local folder by its name: never a stale copy
    inequivalent = datasets.load_dataset(str(out), cache_dir=cache)["train"]
    equivalent = datasets.load_dataset(str(out), "equivalent", cache_dir=cache)["train"]
    assert inequivalent.num_rows == result["pairs"] and equivalent.num_rows == standing
    assert all(len(row["inputs"]) == row["inputs_tried"] >= 1 and row["transformations"] for row in equivalent)
    assert "never proven" in (out / "README.md").read_text()


def test_an_llm_generator_proposes_equivalent_rewrites_beside_the_rewriter(local_backend, tiny_model, tmp_path):
    """``proposer = "both"`` with the tiny model through the real transformers backend: the generate batch asks the
    model with the equivalent-rewrite prompt too (its responses stored with the batch), the rewriter's candidates
    still make pairs (the tiny model's text never parses), and a replan of the round has nothing left to try."""
    from sinq.agents.config import AgentConfig, Sampling
    from sinq.tasks import stages

    settings = _settings(tmp_path, limit=2)
    generator = AgentConfig(kind="llm", backend="transformers", model=str(tiny_model), device="cpu",
                            sampling=Sampling(max_tokens=24, seed=7))
    settings.agents = AgentsConfig(generator=generator, equivalence=EquivalenceConfig(proposer="both"))
    ids = stages.source_problems(settings, "run-1")["problem_ids"]
    work = stages.plan_generate(settings, "run-1", ids)
    assert [p.problem_id for p in work.equivalent] == ids
    played = stages.play_generate(settings, work)
    versions = {r["prompt_version"] for r in played.rows["llm_requests"]}
    assert "alice-equivalent-v1" in versions, versions
    made = played.counts["equivalence"]
    assert made["kept"] >= 1 and sum(made["llm_rejected"].values()) >= 1, made
    stages.store_played(settings, played)
    db = settings.warehouse.path
    assert _one(db, "SELECT count(*) FROM equivalence_attempts") == len(ids)
    assert _one(db, "SELECT count(DISTINCT evidence) FROM equivalence_evidence") >= 1
    assert stages.plan_generate(settings, "run-2", ids).equivalent == []


def test_the_verification_rate_is_a_share_of_the_generator_samples(night) -> None:
    """Both kinds of pair are stored, but only the inequivalent ones come from samples: the rate divides the samples
    that became a verified pair by the samples, never more than 1 (it read 1.5143 when both kinds were counted)."""
    settings, summary = night
    db = settings.warehouse.path
    made = _one(db, "SELECT count(DISTINCT p.sample_id) FROM pairs p JOIN samples s USING (sample_id) "
                    "WHERE s.run_id = ? AND p.pair_kind = 'inequivalent'", [summary["run_id"]])
    assert summary["equivalent_pairs"] > 0 and 0 < made <= summary["samples"]
    assert summary["verification_rate"] == round(made / summary["samples"], 4) <= 1
