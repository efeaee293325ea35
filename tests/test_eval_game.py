"""The held-out ``game`` suite (issue 13): a real nightly run (baseline agents, real sandbox, real DuckDB, real
Prefect test server) makes verified pairs, half of HumanEval's problems are held out, `sinq eval freeze` copies the
held-out ones into a content-hashed set, and the suite plays agents on it — scripted evaluators whose answers are
known (exact success rates), the baseline agents, and an LLM evaluator on the real tiny model with a LoRA adapter
(the real loading code). The gate then measures an adapter on the set and refuses one that does not improve."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from sinq.agents.base import EvaluatorAnswer, GeneratorSample
from sinq.evals.config import EvalConfig, GameEvalConfig


@pytest.fixture(scope="module")
def played(prefect_server, tmp_path_factory):
    """A warehouse after one nightly run on 14 HumanEval problems with half of them held out."""
    from sinq.flows.config import RunConfig
    from sinq.flows.nightly import for_settings
    from sinq.sandbox.shared import close_shared_pools
    from sinq.settings import Settings
    from sinq.sources.config import SourcesConfig, SplitConfig
    from sinq.warehouse.config import WarehouseConfig
    from sinq.warehouse.store import Warehouse
    from tests.conftest import fast_config

    tmp = tmp_path_factory.mktemp("game")
    settings = Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=tmp / "w.duckdb"),
                        run=RunConfig(limit=14, batch_size=7, export_dir=None),
                        sources=SourcesConfig(split=SplitConfig(held_out_share=0.5)))
    try:
        summary = for_settings(settings)(settings.model_dump(mode="json"))
    finally:
        close_shared_pools()
    assert summary["verified_pairs"] > 0, summary
    return {"settings": settings, "warehouse": Warehouse(settings.warehouse.path), "tmp": tmp}


@pytest.fixture(scope="module")
def frozen_set(played):
    from sinq.evals import game

    result = game.freeze(played["warehouse"], GameEvalConfig(freeze_per_problem=1),
                         played["settings"].sources.split, name="test")
    return result | {"set": game.frozen(played["warehouse"], result["set_id"])}


def test_freeze_copies_only_held_out_pairs_and_is_content_hashed(played, frozen_set) -> None:
    from sinq.evals import game
    from sinq.sources.splits import split_of
    from sinq.training.decontam import load_items
    from sinq.warehouse.evals import held_out_candidates, list_sets

    warehouse, split = played["warehouse"], played["settings"].sources.split
    every = held_out_candidates(warehouse)
    held = [r for r in every if split_of(r["problem_id"], split, r["source"]) == "held_out"]
    assert 0 < len(held) < len(every), "the run must have verified pairs on both sides of the split"
    pairs = frozen_set["set"]["pair_rows"]
    assert frozen_set["created"] and frozen_set["pairs"] == len(pairs) > 0
    assert all(split_of(p["problem_id"], split, p["source"]) == "held_out" for p in pairs)
    assert len({p["problem_id"] for p in pairs}) == len(pairs)  # freeze_per_problem = 1
    assert frozen_set["problems"] == len({r["problem_id"] for r in held})
    stored = {r["pair_id"]: r for r in every}
    for p in pairs:
        assert p["variant_code"] == stored[p["pair_id"]]["variant_code"]
        assert p["diverging_input"] == stored[p["pair_id"]]["diverging_input"]
    again = game.freeze(warehouse, GameEvalConfig(freeze_per_problem=1), split, name="again")
    assert again["set_id"] == frozen_set["set_id"] and not again["created"]
    assert [s["set_id"] for s in list_sets(warehouse)] == [frozen_set["set_id"]]
    other = game.freeze(warehouse, GameEvalConfig(freeze_per_problem=1, freeze_max_pairs=1), split)
    assert other["set_id"] != frozen_set["set_id"] and other["pairs"] == 1
    assert game.frozen(warehouse)["set_id"] == other["set_id"]  # latest = the newest
    registered = {i.text for i in load_items(warehouse) if i.suite == "game"}
    assert {p["variant_code"] for p in pairs} <= registered


def test_freeze_without_held_out_pairs_is_one_clear_error(played, tmp_path) -> None:
    from sinq.evals import game
    from sinq.evals.common import EvalError
    from sinq.sources.config import SplitConfig
    from sinq.warehouse.store import Warehouse

    with pytest.raises(EvalError, match="no verified pair of a held-out problem"):
        game.freeze(played["warehouse"], GameEvalConfig(), SplitConfig(held_out_share=0.0), held_out_splits=())
    with pytest.raises(EvalError, match="no frozen game set"):
        game.frozen(Warehouse(tmp_path / "empty.duckdb"))


class Scripted:
    """An evaluator whose answers are known: the frozen diverging input for the first ``right`` answers of each
    pair, then non-answers (which count as failures)."""

    def __init__(self, inputs: dict[str, str], right: int, name: str = "scripted") -> None:
        self.inputs, self.right, self.name = inputs, right, name

    def evaluate(self, requests):
        return [[EvaluatorAnswer(r.pair_id, self.inputs[r.pair_id] if i < self.right else None,
                                 reason=None if i < self.right else "no_input") for i in range(r.n)]
                for r in requests]


def test_evaluator_success_counts_every_answer_and_compares_pairwise(played, frozen_set, local_backend) -> None:
    from sinq.evals import game
    from sinq.evals.common import record
    from sinq.evals.compare import compare
    from sinq.warehouse.evals import read_eval

    warehouse, the_set = played["warehouse"], frozen_set["set"]
    inputs = {p["pair_id"]: p["diverging_input"] for p in the_set["pair_rows"]}
    pairs = len(inputs)
    config = EvalConfig(game=GameEvalConfig(answers=4), bootstrap_resamples=500)
    oracle = game.evaluate_evaluator(local_backend, the_set, Scripted(inputs, 4), config, model="oracle")
    quarter = game.evaluate_evaluator(local_backend, the_set, Scripted(inputs, 1), config, model="quarter")
    assert oracle.n == quarter.n == 4 * pairs
    assert oracle.metrics["success_rate"]["value"] == 1.0 and oracle.metrics["solved_rate"]["value"] == 1.0
    assert quarter.metrics["success_rate"]["value"] == 0.25 and quarter.metrics["solved_rate"]["value"] == 1.0
    assert quarter.metrics["success_rate"]["low"] < 0.25 < quarter.metrics["success_rate"]["high"]
    assert quarter.detail["non_answers"] == 3 * pairs
    assert any(name.startswith("success_rate@difficulty=") for name in oracle.metrics)
    a, b = record(warehouse, quarter), record(warehouse, oracle)
    stored = read_eval(warehouse, b)
    assert stored["suite"] == "game" and stored["mode"] == "evaluator" and len(stored["results"]) == 4 * pairs
    assert stored["detail"]["set_id"] == the_set["set_id"]
    paired = compare(warehouse, a, b, config)
    assert paired["items"] == pairs and paired["queries"] == 4 * pairs and paired["mcnemar"] is None
    assert paired["delta"]["value"] == pytest.approx(0.75) and paired["delta"]["low"] > 0


class Unchanged:
    """A generator that hands back the original: never a divergence, so never valid."""

    name = "unchanged"

    def generate(self, requests):
        return [[GeneratorSample(r.problem.problem_id, r.problem.program, "{}") for _ in range(r.n)]
                for r in requests]


def test_generator_mode_against_the_pinned_reference(played, frozen_set, local_backend) -> None:
    from sinq.agents.baselines import MutationGenerator
    from sinq.evals import game
    from sinq.evals.suites import reference_evaluator

    warehouse, the_set = played["warehouse"], frozen_set["set"]
    config = EvalConfig(game=GameEvalConfig(samples=2, answers=2, hard=0), bootstrap_resamples=200)
    problems = len({p["problem_id"] for p in the_set["pair_rows"]})
    reference = reference_evaluator(config, local_backend)
    baseline = game.evaluate_generator(local_backend, the_set, MutationGenerator(local_backend), reference,
                                       warehouse, config, model="baseline")
    # the baseline returns its failed attempts too (each counted), an LLM exactly `samples` per problem
    assert baseline.n >= 2 * problems and baseline.mode == "generator"
    validity = baseline.metrics["validity"]
    assert validity["value"] > 0 and validity["n"] == baseline.n  # the baseline found these pairs once already
    mean = baseline.metrics["mean_difficulty"]
    assert 0 <= mean["low"] <= mean["value"] <= mean["high"] <= 10
    # hard = 0: every valid sample succeeds
    assert baseline.metrics["success_rate"]["value"] == validity["value"]
    assert baseline.sampling["reference"] == game.reference_name(config)
    unchanged = game.evaluate_generator(local_backend, the_set, Unchanged(), reference, warehouse, config)
    assert unchanged.metrics["validity"]["value"] == 0.0 and unchanged.metrics["mean_difficulty"]["value"] is None
    assert unchanged.n == 2 * problems and sum(unchanged.detail["invalid_reasons"].values()) == 2 * problems


@pytest.fixture(scope="module")
def lora(tiny_model, tmp_path_factory) -> Path:
    from tests.test_gate import _lora

    return _lora(tiny_model, 3, tmp_path_factory.mktemp("game-lora") / "adapter")


def test_an_llm_evaluator_on_the_tiny_model_and_the_cli(played, frozen_set, tiny_model, lora) -> None:
    """`sinq eval game` through the real loading code (tiny model + LoRA), and the baseline evaluator as the
    configured agent; both stored with every answer counted."""
    from typer.testing import CliRunner

    from sinq.cli import app
    from sinq.sandbox.shared import close_shared_pools

    db = str(played["settings"].warehouse.path)
    config = played["tmp"] / "game.toml"
    config.write_text("[eval.game]\nanswers = 2\nmax_tokens = 24\n")
    runner = CliRunner()
    try:
        listed = runner.invoke(app, ["eval", "sets", "--db", db, "--json"])
        assert listed.exit_code == 0, listed.output
        set_id = json.loads(listed.stdout)[0]["set_id"]
        llm = runner.invoke(app, ["eval", "game", "--mode", "evaluator", "--model", str(tiny_model), "--adapter",
                                  str(lora), "--set", set_id, "--limit", "2", "--device", "cpu", "--db", db,
                                  "--config", str(config), "--json"])
        assert llm.exit_code == 0, llm.output
        summary = json.loads(llm.stdout.strip().splitlines()[-1])
        assert summary["suite"] == "game" and summary["n"] == 4 and summary["adapter"] == str(lora)
        rate = summary["metrics"]["success_rate"]
        assert 0 <= rate["low"] <= rate["value"] <= rate["high"] <= 1 and rate["n"] == 4
        baseline = runner.invoke(app, ["eval", "game", "--agent", "evaluator", "--set", set_id, "--db", db,
                                       "--config", str(config), "--json"])
        assert baseline.exit_code == 0, baseline.output
        fuzz = json.loads(baseline.stdout.strip().splitlines()[-1])
        assert fuzz["model"].startswith("baseline:") and fuzz["n"] == 2 * frozen_set["pairs"]
        assert fuzz["metrics"]["success_rate"]["value"] > 0
        refused = runner.invoke(app, ["eval", "game", "--db", db])
        assert refused.exit_code != 0 and "--mode" in str(refused.exception)
        assert getattr(refused.exception, "exit_code", None) == 2
    finally:
        close_shared_pools()


def test_the_gate_measures_on_the_game_and_refuses_no_improvement(played, frozen_set, tiny_model, lora,
                                                                   local_backend) -> None:
    from datetime import UTC, datetime

    from sinq.evals.config import GateConfig, GateSuite
    from sinq.evals.gate import run_gate
    from sinq.warehouse.adapters import gate_decisions

    warehouse = played["warehouse"]
    warehouse.store({"adapters": [{"adapter_id": "game-lora", "role": "evaluator", "base_model": str(tiny_model),
                                   "path": str(lora), "job_id": None, "snapshot_id": None, "promoted": False,
                                   "promoted_at": None, "created_at": datetime.now(UTC)}]})
    config = EvalConfig(bootstrap_resamples=200, game=GameEvalConfig(answers=2, max_tokens=16,
                                                                      set=frozen_set["set_id"]),
                        gate=GateConfig(device="cpu", suites=[GateSuite(suite="game", role="primary", limit=2)]))
    decision = run_gate(warehouse, local_backend, "evaluator", "game-lora", config,
                        splits=played["settings"].sources.split)
    game = decision["figures"]["suites"]["game"]
    assert game["items"] == 2 and game["queries"] == 4 and game["metric"] == "success_rate"
    assert game["candidate_eval"] != game["incumbent_eval"]
    # a random adapter on a random model finds no divergence, like its base model: no improvement, refused
    assert not decision["passed"] and "game" in decision["reasons"][0]
    assert gate_decisions(warehouse, "evaluator", "game-lora")[-1]["decision_id"] == decision["decision_id"]


def test_the_evaluate_flow_measures_a_registered_adapter_and_shows_it(played, frozen_set, tiny_model, lora) -> None:
    """The `evaluate` flow (the GPU pool's deployment) on a registered adapter: every suite stored with its
    interval, a skipped one said, and the UI's table and picture through the Prefect client."""
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from sinq.evals.config import GateConfig, GateSuite
    from sinq.flows.evaluation import evaluate
    from sinq.sandbox.shared import close_shared_pools
    from sinq.warehouse.evals import read_eval

    warehouse = played["warehouse"]
    warehouse.store({"adapters": [{"adapter_id": "eval-lora", "role": "evaluator", "base_model": str(tiny_model),
                                   "path": str(lora), "job_id": None, "snapshot_id": None, "promoted": False,
                                   "promoted_at": None, "created_at": datetime.now(UTC)}]})
    settings = played["settings"].model_copy(deep=True)
    settings.eval = EvalConfig(game=GameEvalConfig(answers=2, max_tokens=16, set=frozen_set["set_id"]),
                               gate=GateConfig(device="cpu", max_tokens=8, suites=[
                                   GateSuite(suite="game", role="primary", limit=2),
                                   GateSuite(suite="humaneval", limit=2), GateSuite(suite="identifier-swap")]))
    try:
        result = evaluate(settings.model_dump(mode="json"), "evaluator", "eval-lora")
    finally:
        close_shared_pools()
    assert result["adapter_id"] == "eval-lora" and result["adapter"] == str(lora)
    assert result["model"] == str(tiny_model)
    suites = {s["label"]: s for s in result["suites"]}
    assert suites["game"]["n"] == 4 and suites["humaneval"]["n"] == 2
    assert "no file given" in suites["identifier-swap"]["skipped"]
    stored = read_eval(warehouse, suites["game"]["eval_id"])
    assert stored["adapter"] == str(lora) and stored["mode"] == "evaluator" and len(stored["results"]) == 4
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[
            "evaluation-evaluator", "evaluation-evaluator-plot"])))
    kinds = {a.key: a for a in artifacts}
    assert set(kinds) == {"evaluation-evaluator", "evaluation-evaluator-plot"}
    assert kinds["evaluation-evaluator-plot"].data.startswith("data:image/png;base64,")
    table = json.loads(kinds["evaluation-evaluator"].data)
    assert {row["suite"] for row in table} == {"game", "humaneval", "identifier-swap"}
    assert next(r for r in table if r["suite"] == "game")["eval_id"] == suites["game"]["eval_id"]
