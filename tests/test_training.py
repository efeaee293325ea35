"""Training on CPU with real TRL and a tiny random model made in the test: training sets built from a warehouse that a
real run filled (sandbox, baseline agents), a few steps of SFT, DPO and GRPO (GRPO rewarded by the sandbox), the
adapter registered, promoted and loaded by the transformers backend."""

from __future__ import annotations

import json
import re

import pytest

from sinq.evals.config import GateConfig, GateSuite
from sinq.flows.config import RunConfig
from sinq.sandbox.shared import close_shared_pools
from sinq.settings import Settings
from sinq.sources.splits import split_of
from sinq.training.config import BuildConfig, TrainConfig
from sinq.training.datasets import HeldOutLeak, evaluator_dpo, generator_dpo, generator_sft, snapshot, write_snapshot
from sinq.warehouse.config import WarehouseConfig
from tests.conftest import fast_config

STEPS = TrainConfig(max_steps=2, batch_size=2, max_length=4096, lora_r=4, lora_alpha=8, logging_steps=1,
                    num_generations=2, max_completion_length=16)


@pytest.fixture(scope="module")
def filled(local_backend, tmp_path_factory):
    """A warehouse filled by the real stages (the nightly flow's bodies) on HumanEval problems."""
    from sinq.tasks import stages

    tmp = tmp_path_factory.mktemp("training")
    settings = Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=tmp / "w.duckdb"),
                        run=RunConfig(limit=8, export_dir=None))
    settings.agents.pairs_per_problem = 2
    ids = stages.source_problems(settings, "run-1")["problem_ids"]
    stages.generate_batch(settings, "run-1", ids)
    stages.evaluate_batch(settings, "run-1", ids)
    close_shared_pools()
    return settings, tmp


def _train_id(name: str) -> str:
    """``name`` with the first suffix that the default held-out rule keeps for training."""
    return next(f"{name}-{n}" for n in range(100) if split_of(f"{name}-{n}") == "train")


def _row(pair: str, problem: str, difficulty: int, split: str = "train", diverged: bool = True) -> dict:
    return {"pair_id": pair, "problem_id": _train_id(problem), "split": split,
            "original": "def f(x):\n    return x\n",
            "variant": "def f(x):\n    return x + 1\n", "entry_point": "f", "literal": "{'x': 1}",
            "difficulty": difficulty, "target_difficulty": 5, "round": 0, "run_id": "r", "response": None,
            "detail": "arith", "diverged": diverged}


def test_generator_sft_relabels_and_rebalances():
    rows = [_row(f"h{i}", f"p{i}", 7) for i in range(9)] + [_row(f"e{i}", f"q{i}", 1) for i in range(20)]
    examples = generator_sft(rows, BuildConfig(easy_share=0.1))
    assert len(examples) == 10
    assert sum("Difficulty level: 1" in e["prompt"][1]["content"] for e in examples) == 1
    assert all(e["completion"][0]["role"] == "assistant" for e in examples)
    with_aux = generator_sft(rows, BuildConfig(easy_share=0.1, difficulty_examples=True))
    aux = [e for e in with_aux if e["kind"] == "difficulty"]
    assert len(aux) == 10 and aux[0]["prompt"][-2]["role"] == "assistant"
    assert aux[0]["completion"][0]["content"].startswith("Difficulty: ")


def test_difficulty_examples_do_not_state_their_answer():
    """The relabelled prompt says the measured difficulty; an example whose answer is that difficulty asks for the
    generation at difficulty Any, and trains on the difficulty only (the generation turn is prompt)."""
    rows = [_row(f"p{d}", f"q{d}", d) for d in range(11)]
    rows[3]["response"] = "# Analysis\nA hard one.\n\n# Generated program\n```python\ndef f(x):\n    return -x\n```\n"
    examples = generator_sft(rows, BuildConfig(easy_share=0.5, difficulty_examples=True))
    aux = [e for e in examples if e["kind"] == "difficulty"]
    assert len(aux) == len(examples) // 2 and {e["difficulty"] for e in aux} >= {3, 5, 10}
    for example in aux:
        answer = example["completion"][0]["content"]
        turns = [turn["content"] for turn in example["prompt"]]
        assert answer == f"Difficulty: {example['difficulty']}" and len(example["completion"]) == 1
        assert not any(re.search(r"Difficulty level: \d", turn) or answer in turn for turn in turns), turns
        assert [t["role"] for t in example["prompt"]] == ["system", "user", "assistant", "user"]
        assert turns[1].startswith("Difficulty level: Any\n")
    for example in (e for e in examples if e["kind"] == "generate"):
        assert example["prompt"][1]["content"].startswith(f"Difficulty level: {example['difficulty']}\n")


def test_dpo_builders_prefer_hard_and_verified():
    gen = generator_dpo([_row("a", "p", 8), _row("b", "p", 0), _row("c", "q", 9)], BuildConfig())
    assert len(gen) == 1 and gen[0]["pair_id"] == "a"
    answers = [_row("a", "p", 0, diverged=True), {**_row("a", "p", 0, diverged=False), "literal": "{'x': 0}"}]
    [example] = evaluator_dpo(answers, BuildConfig())
    assert "{'x': 1}" in example["chosen"][0]["content"] and "{'x': 0}" in example["rejected"][0]["content"]


def test_held_out_problems_never_enter_a_set(filled, tmp_path):
    """Stored as held out (the loader applied the split: HumanEval/4 is among the first 8), stored as test, or held
    out by the rule while stored as train: none reaches a set, and the left-out pairs are counted."""
    from sinq.warehouse.store import Warehouse

    settings, _ = filled
    warehouse = Warehouse(settings.warehouse.path)
    config = BuildConfig(root=tmp_path)
    with pytest.raises(HeldOutLeak):
        write_snapshot(warehouse, "sft", "generator", generator_sft([_row("x", "p", 7, split="test")], config),
                       config)
    ruled_out = next(f"r-{n}" for n in range(100) if split_of(f"r-{n}") == "held_out")
    with pytest.raises(HeldOutLeak):
        write_snapshot(warehouse, "sft", "generator",
                       generator_sft([{**_row("y", "p", 7), "problem_id": ruled_out}], config), config)
    with warehouse.reading() as con:
        rows = con.execute("SELECT p.problem_id, any_value(pr.split), any_value(pr.source_id), count(*) FROM pairs p "
                           "JOIN problems pr USING (problem_id) WHERE p.pair_kind = 'inequivalent' "
                           "GROUP BY ALL ORDER BY 3").fetchall()
    held = {pid: n for pid, split, _, n in rows if split == "held_out"}
    train = [pid for pid, split, _, _ in rows if split == "train"]
    assert [source_id for _, split, source_id, _ in rows if split == "held_out"] == ["HumanEval/4"]
    with warehouse.writing() as con:
        con.execute("UPDATE problems SET split = 'test' WHERE problem_id = ?", [train[0]])
    try:
        built = snapshot(warehouse, "sft", "generator", BuildConfig(root=tmp_path, easy_share=1.0))
        assert built["problems"] == len(train) - 1
        assert built["removed"]["held_out"] == sum(held.values()) + dict((r[0], r[3]) for r in rows)[train[0]]
        import pyarrow.parquet as pq

        touched = set(pq.read_table(f"{built['path']}/train.parquet").column("problem_id").to_pylist())
        assert not touched & {train[0], *held}
    finally:
        with warehouse.writing() as con:
            con.execute("UPDATE problems SET split = 'train' WHERE problem_id = ?", [train[0]])


def test_sft_then_promote_then_the_backend_loads_the_adapter(filled, tiny_model):
    from sinq.agents.backends import resolve_adapter
    from sinq.agents.config import AgentConfig
    from sinq.agents.llm import LLMRequest
    from sinq.agents.transformers_backend import TransformersBackend
    from sinq.training.train import train
    from sinq.warehouse.adapters import force_promote, list_adapters
    from sinq.warehouse.store import Warehouse

    settings, tmp = filled
    warehouse = Warehouse(settings.warehouse.path)
    built = snapshot(warehouse, "sft", "evaluator", BuildConfig(root=tmp / "sets"))
    assert built["examples"] >= 3
    result = train(warehouse, "sft", "evaluator", str(tiny_model), built["snapshot_id"],
                   STEPS.model_copy(update={"output_root": tmp / "adapters"}))
    assert result["metrics"]["train_loss"] > 0
    [row] = list_adapters(warehouse, "evaluator")
    assert row["snapshot_id"] == built["snapshot_id"] and row["kind"] == "sft" and not row["promoted"]
    with warehouse.reading() as con:
        versions, status = con.execute("SELECT versions, status FROM training_jobs").fetchall()[0]
    assert status == "completed" and {"trl", "transformers", "torch", "peft"} <= set(json.loads(versions))

    config = AgentConfig(kind="llm", backend="transformers", model=str(tiny_model), adapter="promoted")
    assert resolve_adapter(config, "evaluator", warehouse).adapter is None
    # never gated: only a forced promotion (stored with its reason) makes the role use it
    force_promote(warehouse, "evaluator", row["adapter_id"], "the loading path is tested here, not the gate")
    resolved = resolve_adapter(config, "evaluator", warehouse)
    assert resolved.adapter == row["path"]
    backend = TransformersBackend(str(tiny_model), device="cpu")
    ask = LLMRequest(messages=[{"role": "user", "content": "hello"}], temperature=0, max_tokens=8)
    plain, tuned = backend.generate([ask, ask.model_copy(update={"adapter": resolved.adapter})])
    assert plain.error is None and tuned.error is None


def test_dpo_steps_on_a_registered_set(filled, tiny_model):
    from sinq.training.train import train
    from sinq.warehouse.store import Warehouse

    settings, tmp = filled
    warehouse = Warehouse(settings.warehouse.path)
    answers = [_row(f"a{i}", f"p{i}", 0, diverged=True) for i in range(4)]
    answers += [{**_row(f"a{i}", f"p{i}", 0, diverged=False), "literal": "{'x': 0}"} for i in range(4)]
    config = BuildConfig(root=tmp / "sets")
    built = write_snapshot(warehouse, "dpo", "evaluator", evaluator_dpo(answers, config), config)
    result = train(warehouse, "dpo", "evaluator", str(tiny_model), built["snapshot_id"],
                   STEPS.model_copy(update={"output_root": tmp / "adapters"}))
    assert "train_loss" in result["metrics"]


def test_grpo_steps_rewarded_by_the_sandbox(filled, tiny_model, local_backend):
    from sinq.training.rewards import SandboxReward
    from sinq.training.train import train
    from sinq.warehouse.store import Warehouse

    settings, tmp = filled
    warehouse = Warehouse(settings.warehouse.path)
    built = snapshot(warehouse, "grpo", "evaluator", BuildConfig(root=tmp / "sets", max_examples=4))
    result = train(warehouse, "grpo", "evaluator", str(tiny_model), built["snapshot_id"],
                   STEPS.model_copy(update={"output_root": tmp / "adapters", "max_steps": 1}), local_backend)
    assert result["metrics"]["mean_reward"] == 0.0  # a random model's answers never parse to a diverging input

    reward = SandboxReward(local_backend, "evaluator")
    good = [{"role": "assistant", "content": "# Diverging input example\n```python\n{'x': 1}\n```"}]
    scores = reward([None, None], [good, [{"role": "assistant", "content": "no idea"}]],
                    original=["def f(x):\n    return x\n"] * 2, variant=["def f(x):\n    return x + 1\n"] * 2,
                    entry_point=["f", "f"])
    assert scores == [1.0, 0.0]


def test_two_round_self_play_under_prefect(prefect_server, local_backend, tiny_model, tmp_path):
    """Round 0: the LLM roles have no promoted adapter yet, so the baselines play (cold start) and make the data;
    both roles are trained on it and promoted; round 1 plays with the tiny model and the promoted adapters."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from sinq.agents.config import AgentConfig, Sampling
    from sinq.flows.finetuning import self_play
    from sinq.warehouse.adapters import list_adapters
    from sinq.warehouse.store import Warehouse

    settings = Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=tmp_path / "w.duckdb"),
                        run=RunConfig(limit=4, export_dir=None))
    llm = AgentConfig(kind="llm", backend="transformers", model=str(tiny_model), adapter="promoted",
                      sampling=Sampling(max_tokens=16, seed=0))
    settings.agents.generator = llm
    settings.agents.evaluator = llm
    settings.agents.answers = 2
    settings.training.build.root = tmp_path / "sets"
    settings.training.train = STEPS.model_copy(update={"output_root": tmp_path / "adapters"})
    # no primary suite here (no identifier-swap file, no held-out game set yet): opting out of require_primary is
    # what lets the no-regression suite decide alone, so that round 1 plays with round 0's adapters
    settings.eval.gate = GateConfig(max_tokens=8, device="cpu", require_primary=False,
                                    suites=[GateSuite(suite="humaneval", limit=2)])
    result = self_play(settings.model_dump(mode="json"), rounds=2)

    curves = result["rounds"]
    assert [c["round"] for c in curves] == [0, 1]
    assert curves[0]["verified_pairs"] >= 1 and set(curves[0]["trained"]) == {"generator", "evaluator"}
    assert curves[1]["samples"] >= 4 and curves[1]["generator_validity"] == 0.0  # garbage, kept as reasons
    warehouse = Warehouse(settings.warehouse.path)
    with warehouse.reading() as con:
        stored = con.execute("SELECT round, curves FROM rounds ORDER BY round").fetchall()
        agents = con.execute("SELECT DISTINCT agent_id FROM samples WHERE round = 1").fetchall()
    assert [r for r, _ in stored] == [0, 1]
    adapters = {a["adapter_id"]: a for a in list_adapters(warehouse, "generator")}
    round_0 = adapters[curves[0]["trained"]["generator"]]
    assert agents == [(f"generator:transformers:{tiny_model}:{round_0['path']}",)]  # round 1 used round 0's
    assert adapters[curves[1]["trained"]["generator"]]["promoted"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[
            "self-play-curves"])))
    assert artifacts and artifacts[0].data.startswith("data:image/png;base64,")
    import base64
    import io

    import matplotlib.pyplot as plt

    picture = plt.imread(io.BytesIO(base64.b64decode(artifacts[0].data.split(",", 1)[1])))
    assert picture.shape[0] == 550  # the gate's panel: every trained adapter was measured
    assert all(g["suites"]["humaneval"]["low"] <= g["suites"]["humaneval"]["delta"] for c in curves
               for g in c["gate"].values())


def test_finetune_command_trains_gates_and_promotes_nothing_without_a_primary_suite(filled, tiny_model,
                                                                                     prefect_server):
    """Issue 26, finding 1 through `sinq train finetune`: a fresh adapter measured on 2 HumanEval items alone (no
    primary suite) used to be promoted on "no regression"; now it is trained, gated, and not promoted, saying why."""
    import os
    import subprocess
    import sys

    from sinq.warehouse.adapters import gate_decisions, list_adapters, promoted
    from sinq.warehouse.store import Warehouse

    settings, tmp = filled
    warehouse = Warehouse(settings.warehouse.path)
    before = promoted(warehouse, "evaluator")  # the module's warehouse may hold one from an earlier test
    config = tmp / "finetune.toml"
    config.write_text(f"""
[training.build]
root = "{tmp / 'ft-sets'}"
[training.train]
output_root = "{tmp / 'ft-adapters'}"
max_steps = 1
batch_size = 2
max_length = 4096
lora_r = 4
[eval.gate]
max_tokens = 8
device = "cpu"
[[eval.gate.suites]]
suite = "humaneval"
limit = 2
""")
    done = subprocess.run([sys.executable, "-m", "sinq.cli", "train", "finetune", "--role", "evaluator",
                           "--base", str(tiny_model), "--db", str(settings.warehouse.path), "--config", str(config),
                           "--json"], env={**os.environ, "PREFECT_API_URL": prefect_server}, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["trained"] and not result["promoted"] and not result["gate"]["passed"]
    assert "no primary suite is configured: not promoted" in result["gate"]["reasons"][-1]
    assert promoted(warehouse, "evaluator") == before  # the role goes on with what it had
    status = {a["adapter_id"]: a["status"] for a in list_adapters(warehouse, "evaluator")}
    assert status[result["adapter_id"]] == "rejected"
    assert gate_decisions(warehouse, "evaluator", result["adapter_id"])[-1]["decided_by"]
