"""A night is a sampling pass (issue 28): a second night on one warehouse stores new pairs, none a duplicate of the
first night's; a rerun of the second night adds nothing and calls no agent; a problem whose variant space is used
up is recorded and skipped with its count; the pass id defaults to the flow run's scheduled date. Real Prefect
server, real sandbox, real DuckDB file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinq.flows.config import RunConfig
from sinq.flows.passes import pass_for
from sinq.settings import Settings
from sinq.warehouse.config import WarehouseConfig
from tests.conftest import fast_config, read_rows, run_night

TABLES = ("problems", "samples", "pairs", "verdicts", "executions", "evaluator_answers", "difficulty_labels",
          "exhausted_problems")


def _settings(db: Path, **run) -> Settings:
    return Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=db),
                    run=RunConfig(**({"limit": 6, "batch_size": 3, "export_dir": None, "audit_sample": 0} | run)))


def _counts(db: Path) -> dict[str, int]:
    return {t: read_rows(db, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}


@pytest.fixture(scope="module")
def nights(prefect_server, local_backend, tmp_path_factory):
    db = tmp_path_factory.mktemp("nights") / "w.duckdb"
    first = run_night(_settings(db, pass_id="night-1"))
    second = run_night(_settings(db, pass_id="night-2"))
    return db, first, second


def test_a_second_night_stores_new_pairs_and_no_duplicate_of_the_first(nights) -> None:
    db, first, second = nights
    assert first["pass_id"] == "night-1" and second["pass_id"] == "night-2"
    assert first["verified_pairs"] >= 4
    assert second["samples"] > 0, "a new night asks for new samples at the same round"
    assert second["verified_pairs"] >= 4, "the second night stores new unique verified pairs"
    assert second["duplicates"] == {"exact": 0, "near": 0}
    assert second["pass"]["unique_pairs"] == second["verified_pairs"]
    keys = {night: {k for (k,) in read_rows(db, "SELECT variant_key FROM samples WHERE pass_id = ? AND variant_key IS "
                                            "NOT NULL", [night])} for night in ("night-1", "night-2")}
    assert keys["night-1"] and keys["night-2"] and not keys["night-1"] & keys["night-2"], \
        "night 2 proposes no variant night 1 already stored"
    night_two = read_rows(db, "SELECT p.variant_ast_hash, p.duplicate_of FROM pairs p JOIN samples s USING (sample_id) "
                          "WHERE s.pass_id = 'night-2' AND p.pair_kind = 'inequivalent'")
    assert night_two and all(duplicate is None for _, duplicate in night_two)
    earlier = {h for (h,) in read_rows(db, "SELECT p.variant_ast_hash FROM pairs p JOIN samples s USING (sample_id) "
                                       "WHERE s.pass_id = 'night-1'")}
    assert not earlier & {h for h, _ in night_two}
    assert second["round"] == first["round"] == 0, "the round keeps its meaning"
    assert read_rows(db, "SELECT pass_id FROM runs ORDER BY started_at") == [("night-1",), ("night-2",)]
    assert read_rows(db, "SELECT count(*) FROM difficulty_labels d JOIN pairs p USING (pair_id) JOIN samples s "
                     "USING (sample_id) WHERE s.pass_id = 'night-2'")[0][0] == second["verified_pairs"], \
        "the evaluator labels the new night's pairs"


def test_a_rerun_of_the_same_night_adds_nothing_and_calls_no_agent(nights, monkeypatch) -> None:
    from sinq.agents.baselines import FuzzEvaluator, MutationGenerator

    def forbidden(self, requests):
        raise AssertionError("an agent was called again for a night already stored")

    monkeypatch.setattr(MutationGenerator, "generate", forbidden)
    monkeypatch.setattr(FuzzEvaluator, "evaluate", forbidden)
    db, _, second = nights
    before = _counts(db)
    again = run_night(_settings(db, pass_id="night-2"))
    assert (again["samples"], again["verified_pairs"], again["evaluated_pairs"]) == (0, 0, 0)
    assert _counts(db) == before
    assert again["pass"]["unique_pairs"] == second["pass"]["unique_pairs"], "the pass's figures are the night's"


MBPP = [
    {"task_id": 1, "text": "the identity", "code": "def same(x):\n    return x\n",
     "test_list": ["assert same(3) == 3", "assert same(0) == 0"]},
    {"task_id": 2, "text": "sum of the first n squares",
     "code": "def squares(n):\n    total = 0\n    for i in range(n):\n        if i % 2 == 0 or i > 2:\n"
             "            total += i * i\n    return total\n",
     "test_list": ["assert squares(3) == 4", "assert squares(5) == 29"]},
]


def test_an_exhausted_problem_is_recorded_and_skipped_with_its_count(prefect_server, local_backend,
                                                                      tmp_path) -> None:
    source = tmp_path / "problems.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in MBPP))
    db = tmp_path / "w.duckdb"
    run = {"source": f"mbpp:{source}", "limit": None, "exhausted_after": 1}
    first = run_night(_settings(db, pass_id="a", **run))
    assert first["verified_pairs"] == 2, "night a: one pair per problem (the identity's only mutant: return None)"
    second = run_night(_settings(db, pass_id="b", **run))
    assert second["exhausted_problems"] == 0
    identity = read_rows(db, "SELECT problem_id FROM problems WHERE code LIKE 'def same%'")[0][0]
    assert read_rows(db, "SELECT count(*) FROM pairs p JOIN samples s USING (sample_id) WHERE s.pass_id = 'b' "
                     "AND s.problem_id = ? AND p.duplicate_of IS NULL", [identity])[0][0] == 0, \
        "night b: the identity has no variant left"
    assert second["verified_pairs"] >= 1, "night b: the other problem has room (higher-order mutants)"
    third = run_night(_settings(db, pass_id="c", **run))
    assert third["exhausted_problems"] == 1 and third["pass"]["exhausted_now"] == 1
    assert read_rows(db, "SELECT problem_id, pass_id, after_passes FROM exhausted_problems") == [(identity, "c", 1)]
    assert read_rows(db, "SELECT count(*) FROM samples WHERE pass_id = 'c' AND problem_id = ?", [identity])[0][0] == 0
    assert read_rows(db, "SELECT count(*) FROM samples WHERE pass_id = 'c'")[0][0] > 0, "the run moves on"
    again = run_night(_settings(db, pass_id="c", **run))
    assert again["exhausted_problems"] == 1 and again["pass"]["exhausted_now"] == 0 and again["samples"] == 0


def test_the_pass_defaults_to_the_flow_runs_scheduled_date(prefect_server, local_backend, tmp_path) -> None:
    import uuid

    from prefect.client.orchestration import get_client

    settings = _settings(tmp_path / "w.duckdb", limit=2, timezone="Pacific/Kiritimati")
    summary = run_night(settings)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(uuid.UUID(summary["run_id"]))
    expected = pass_for(settings.run, flow_run.expected_start_time)
    assert summary["pass_id"] == expected and len(expected) == 10
    assert read_rows(settings.warehouse.path, "SELECT pass_id FROM runs") == [(expected,)]
    assert {p for (p,) in read_rows(settings.warehouse.path, "SELECT DISTINCT pass_id FROM samples")} == {expected}
    assert f"pass:{expected}" in flow_run.tags


def test_pass_for_takes_the_configured_id_or_the_scheduled_date_in_the_schedules_timezone() -> None:
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert pass_for(RunConfig(), late) == "2026-03-01"
    assert pass_for(RunConfig(timezone="Europe/Berlin"), late) == "2026-03-02"
    assert pass_for(RunConfig(pass_id="night-7"), late) == "night-7"
    assert pass_for(RunConfig(), datetime(2026, 3, 1, 23, 30)) == "2026-03-01", "naive means UTC"


def test_exploration_never_repeats_a_stored_variant_and_goes_higher_order() -> None:
    from collections import Counter

    from sinq.agents.exploration import explore, family
    from sinq.agents.mutation import DIFFICULTY_ORDER, mutant_sites
    from sinq.game.similarity import ast_hash

    code = MBPP[1]["code"]
    first = {ast_hash(source) for _, source, _ in mutant_sites(code, "squares")}
    stats: Counter = Counter()
    picked = explore(code, "squares", DIFFICULTY_ORDER, sorted(first), 7, 12, stats)
    assert len(picked) == 12 and stats["explore_skipped_stored"] == len(first)
    keys = [key for *_, key in picked]
    assert len(set(keys)) == 12 and not set(keys) & first and ast_hash(code) not in keys
    for operator, source, span, key in picked:
        parts = operator.split("+")
        assert 2 <= len(parts) <= 3 and span is None and key == ast_hash(source)
        assert len(family(operator).split("+")) == len(parts), "each site from another family"
    assert explore(code, "squares", DIFFICULTY_ORDER, sorted(first), 7, 12, Counter()) == picked, "seeded"
    assert explore(code, "squares", DIFFICULTY_ORDER, sorted(first), 8, 12, Counter()) != picked
