"""The promotion gate (issue 13, item 4): the pure rule against known figures, and the gate end to end through the
real tiny model (``make_tiny_model``), LoRA adapters on it loaded by the real loading code, HumanEval completions
run in the real sandbox, a real DuckDB file and a real Prefect test server (the gate task's artifact).

A random adapter on a random model is neither better nor worse at anything, so the primary suite's items are
*constructed*: candidate identifier-swap rows are scored by the base model and by two random LoRA adapters
("good" and "bad"), and the CSV keeps rows where exactly one adapter's pick differs from the base model's, with the
right completion set so that the good adapter's differing picks are right and the bad adapter's are wrong. On that
file the good adapter beats the base model on every discordant item and the bad one loses on every discordant item
— which is what the gate must see and act on (the figures are real forward passes, only the labels are chosen)."""

from __future__ import annotations

import csv
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from sinq.evals.config import EvalConfig, GateConfig, GateSuite
from sinq.game.gate import SuiteFigures, decide

# ---- the pure rule


def test_a_significant_improvement_with_no_regression_passes() -> None:
    decision = decide([SuiteFigures("swap", "primary", 0.25, 0.1, 0.4, p_value=0.004, items=40),
                       SuiteFigures("humaneval", "no_regression", -0.01, -0.05, 0.03, p_value=1.0, items=39)],
                      min_improvement=0.05, max_regression=0.02, alpha=0.05)
    assert decision.passed and decision.suites == {"swap": True, "humaneval": True}
    assert "significant improvement" in decision.reasons[0] and "McNemar p = 0.004" in decision.reasons[0]
    assert "within max_regression" in decision.reasons[1]


def test_an_improvement_that_is_not_significant_is_refused() -> None:
    decision = decide([SuiteFigures("swap", "primary", 0.1, -0.05, 0.25, p_value=0.22, items=40)], alpha=0.05)
    assert not decision.passed and "not significant" in decision.reasons[0] and "0.22 > alpha" in decision.reasons[0]
    # without a p-value (several queries per item) the bootstrap interval decides: above 0 passes, touching 0 not
    assert decide([SuiteFigures("swap", "primary", 0.1, 0.02, 0.2, items=40)]).passed
    assert not decide([SuiteFigures("swap", "primary", 0.1, 0.0, 0.2, items=40)]).passed
    small = decide([SuiteFigures("swap", "primary", 0.03, 0.01, 0.05, p_value=0.01, items=400)],
                   min_improvement=0.05)
    assert not small.passed and "below min_improvement 0.05" in small.reasons[0]
    worse = decide([SuiteFigures("swap", "primary", -0.2, -0.3, -0.1, p_value=0.001, items=40)])
    assert not worse.passed and "no improvement" in worse.reasons[0]


def test_a_regression_beyond_the_bound_is_refused_and_skips_are_said() -> None:
    figures = [SuiteFigures("swap", "primary", 0.3, 0.2, 0.4, p_value=0.001, items=40),
               SuiteFigures("humaneval", "no_regression", -0.05, -0.1, 0.0, p_value=0.1, items=39)]
    refused = decide(figures, max_regression=0.02)
    assert not refused.passed and refused.suites == {"swap": True, "humaneval": False}
    assert "regression beyond max_regression 0.02" in refused.reasons[1]
    assert decide(figures, max_regression=0.1).passed
    only_regression = [SuiteFigures("swap", "primary", skipped="no file given"),
                       SuiteFigures("humaneval", "no_regression", 0.0, 0.0, 0.0, p_value=1.0, items=39)]
    alone = decide(only_regression, require_primary=False)  # the opt-out: the no-regression suites decide alone
    assert alone.passed and "skipped, no file given" in alone.reasons[0] and "alone" in alone.reasons[-1]
    assert not decide([SuiteFigures("swap", "primary", skipped="no file")]).passed
    assert not decide([SuiteFigures("h", "no_regression", math.nan, math.nan, math.nan)]).passed


def test_a_skipped_primary_suite_refuses_by_default() -> None:
    """Issue 26, finding 1: no held-out pair yet, so the primary game suite is skipped; a random adapter that
    scores 0.0 on 2 HumanEval items like its base model is no evidence of anything and is not promoted."""
    figures = [SuiteFigures("game", "primary", skipped="no frozen game set"),
               SuiteFigures("humaneval", "no_regression", 0.0, 0.0, 0.0, p_value=1.0, items=2, incumbent=0.0,
                            candidate=0.0)]
    assert EvalConfig().gate.require_primary
    refused = decide(figures)
    assert not refused.passed and refused.suites == {"humaneval": True}
    assert refused.reasons[0] == "game (primary): skipped, no frozen game set"
    assert "primary suite game was skipped: not promoted" in refused.reasons[-1]
    # one of two primaries skipped refuses too; no primary configured at all refuses, saying so
    both = [SuiteFigures("swap", "primary", 0.3, 0.2, 0.4, p_value=0.001, items=40), *figures]
    assert not decide(both).passed and "game was skipped" in decide(both).reasons[-1]
    only = decide(figures[1:])
    assert not only.passed and "no primary suite is configured: not promoted" in only.reasons[-1]


def test_the_defaults_and_the_toml_section() -> None:
    import tomllib

    from sinq.settings import Settings

    gate = EvalConfig().gate
    assert gate.enabled and [(s.suite, s.role, s.file) for s in gate.suites] == [
        ("game", "primary", None), ("humaneval", "no_regression", None), ("identifier-swap", "no_regression", None)]
    assert gate.suites[0].headline == "success_rate" and gate.suites[1].headline == "pass@1"
    data = tomllib.loads("""
[eval.gate]
min_improvement = 0.01
alpha = 0.01
[[eval.gate.suites]]
suite = "identifier-swap"
role = "primary"
file = "swap.csv"
mode = "generate"
""")
    settings = Settings.model_validate(data)
    assert settings.eval.gate.alpha == 0.01 and settings.eval.gate.suites[0].file == Path("swap.csv")
    assert settings.eval.gate.suites[0].headline == "accuracy"
    with pytest.raises(ValueError):
        GateConfig(suites=[])


# ---- end to end


def _lora(tiny_model: Path, seed: int, path: Path) -> Path:
    """A LoRA adapter with non-zero random weights (a zero-initialised B would change nothing)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"],
                                      init_lora_weights=False))
    model.save_pretrained(path)
    return path


def _construct(tiny_model: Path, good: Path, bad: Path, path: Path, per_side: int = 8) -> Path:
    """The identifier-swap file described in the module docstring: ``per_side`` rows where only the bad adapter
    differs from the base model (the base model's pick is right) and ``per_side`` where only the good one does
    (the good adapter's pick is right)."""
    from sinq.evals.identifier_swap import TransformersScorer

    ops = ["+", "-", "*", "//", "%"]
    candidates = [(f"def f{i}(x):\n    return", (f" x {ops[i % 5]} {i}\n", f" x {ops[(i + 2) % 5]} {i + 1}\n"))
                  for i in range(240)]
    picks = {}
    for name, adapter in (("base", None), ("good", good), ("bad", bad)):
        scores = TransformersScorer(str(tiny_model), str(adapter) if adapter else None)(
            [(p, c) for p, classes in candidates for c in classes])
        picks[name] = [0 if scores[2 * i] > scores[2 * i + 1] else 1 for i in range(len(candidates))]
    bad_only = [i for i in range(len(candidates)) if picks["bad"][i] != picks["base"][i] == picks["good"][i]]
    good_only = [i for i in range(len(candidates)) if picks["good"][i] != picks["base"][i] == picks["bad"][i]]
    assert len(bad_only) >= 6 and len(good_only) >= 6, (len(bad_only), len(good_only))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["prompt", "classes", "answer_index"])
        writer.writeheader()
        for i in bad_only[:per_side]:
            writer.writerow({"prompt": candidates[i][0], "classes": repr(list(candidates[i][1])),
                             "answer_index": picks["base"][i]})
        for i in good_only[:per_side]:
            writer.writerow({"prompt": candidates[i][0], "classes": repr(list(candidates[i][1])),
                             "answer_index": picks["good"][i]})
    return path


@pytest.fixture(scope="module")
def gated(tiny_model, local_backend, prefect_server, tmp_path_factory):
    """A warehouse with the good and bad adapters registered for the evaluator, a gate on the constructed file
    (primary) and three held-out HumanEval tasks (no regression), and the bad then the good adapter gated through
    the real Prefect flow ``gate`` (the task that finetune and self_play call, with its logs and artifact)."""
    from datetime import UTC, datetime

    from sinq.flows.config import RunConfig
    from sinq.flows.finetuning import gate as gate_flow
    from sinq.sandbox.shared import close_shared_pools
    from sinq.settings import Settings
    from sinq.warehouse.config import WarehouseConfig
    from sinq.warehouse.store import Warehouse
    from tests.conftest import fast_config

    tmp = tmp_path_factory.mktemp("gate")
    good, bad = _lora(tiny_model, 1, tmp / "good"), _lora(tiny_model, 2, tmp / "bad")
    swap = _construct(tiny_model, good, bad, tmp / "constructed.csv")
    gate = GateConfig(max_tokens=8, device="cpu", suites=[
        GateSuite(suite="identifier-swap", role="primary", file=swap),
        GateSuite(suite="humaneval", role="no_regression", limit=3)])
    settings = Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=tmp / "w.duckdb"),
                        run=RunConfig(export_dir=None), eval=EvalConfig(gate=gate))
    warehouse = Warehouse(settings.warehouse.path)
    now = datetime.now(UTC)
    warehouse.store({"adapters": [
        {"adapter_id": name, "role": "evaluator", "base_model": str(tiny_model), "path": str(path), "job_id": None,
         "snapshot_id": None, "promoted": False, "promoted_at": None, "created_at": now}
        for name, path in (("bad-adapter", bad), ("good-adapter", good))]})
    data = settings.model_dump(mode="json")
    try:
        rejected = gate_flow(data, "evaluator", "bad-adapter")
        passed = gate_flow(data, "evaluator", "good-adapter")
    finally:
        close_shared_pools()
    return {"warehouse": warehouse, "rejected": rejected, "passed": passed, "swap": swap, "settings": settings,
            "db": settings.warehouse.path}


def test_the_gate_refuses_a_worse_adapter_and_promotes_a_better_one(gated, tiny_model) -> None:
    from sinq.warehouse.adapters import gate_decisions, list_adapters, promoted
    from sinq.warehouse.evals import read_eval

    warehouse = gated["warehouse"]
    rejected, passed = gated["rejected"], gated["passed"]
    assert not rejected["passed"] and passed["passed"]
    assert rejected["incumbent_adapter_id"] is None and rejected["incumbent_model"] == str(tiny_model)
    swap = "identifier-swap:constructed.csv"
    bad, good = rejected["figures"]["suites"][swap], passed["figures"]["suites"][swap]
    assert bad["delta"]["value"] < 0 and bad["mcnemar"]["b_only"] == 0 and bad["mcnemar"]["a_only"] >= 6
    assert good["delta"]["value"] > 0 and good["mcnemar"]["a_only"] == 0 and good["p_value"] <= 0.05
    assert any("no improvement" in r for r in rejected["reasons"])
    assert any("significant improvement" in r for r in passed["reasons"])
    # the base model's runs were made once, for the first decision, and reused by the second
    assert not bad["incumbent_reused"] and good["incumbent_reused"]
    assert good["incumbent_eval"] == bad["incumbent_eval"]
    assert passed["figures"]["suites"]["humaneval"]["incumbent_reused"]
    base_run = read_eval(warehouse, good["incumbent_eval"])
    assert base_run["adapter"] is None and base_run["n"] == good["items"] == 16
    assert read_eval(warehouse, good["candidate_eval"])["adapter"] == passed["figures"]["candidate"]["adapter"]
    # stored: statuses, the role's adapter, both decisions with their evidence
    status = {a["adapter_id"]: a["status"] for a in list_adapters(warehouse, "evaluator")}
    assert status == {"bad-adapter": "rejected", "good-adapter": "promoted"}
    assert promoted(warehouse, "evaluator")["adapter_id"] == "good-adapter"
    stored = gate_decisions(warehouse, "evaluator")
    assert [(d["adapter_id"], d["passed"], d["forced"]) for d in stored] == [
        ("bad-adapter", False, False), ("good-adapter", True, False)]
    assert stored[0]["figures"]["suites"][swap]["delta"]["value"] == bad["delta"]["value"]
    assert stored[1]["reasons"] == passed["reasons"]
    assert passed["figures"]["suites"]["humaneval"]["items"] == 3


def test_the_decision_is_visible_in_prefect(gated) -> None:
    """Each gate flow run has the decision's markdown artifact and the decision in its logs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowFilter,
        FlowFilterName,
        LogFilter,
        LogFilterFlowRunId,
    )

    expected = f"gate {gated['rejected']['decision_id']}: evaluator adapter bad-adapter rejected"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[
            "gate-evaluator"])))
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["gate"])))
        for _ in range(40):  # the API log handler sends in batches: wait for it
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[r.id for r in runs])))
            lines = " ".join(log.message for log in logs)
            if expected in lines and "good-adapter promoted" in lines:
                break
            time.sleep(0.5)
    texts = " ".join(a.data for a in artifacts)
    assert "`bad-adapter` REJECTED" in texts and "`good-adapter` PROMOTED" in texts
    assert f"The evaluator goes on with `base model {gated['rejected']['incumbent_model']}`" in texts
    assert gated["passed"]["decision_id"] in texts and "| identifier-swap:constructed.csv | primary |" in texts
    assert {a.flow_run_id for a in artifacts} == {r.id for r in runs} and len(runs) == 2
    assert expected in lines
    assert "good-adapter promoted" in lines


def test_models_list_and_a_forced_promotion(gated) -> None:
    import json

    from typer.testing import CliRunner

    from sinq.cli import app
    from sinq.warehouse.adapters import gate_decisions, promoted

    runner = CliRunner()
    db = str(gated["db"])
    listed = runner.invoke(app, ["models", "list", "--db", db, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["adapter_id"]: r for r in json.loads(listed.output)}
    assert rows["bad-adapter"]["status"] == "rejected" and not rows["bad-adapter"]["gate"]["passed"]
    table = runner.invoke(app, ["models", "list", "--db", db])
    assert "rejected" in table.output and "promoted" in table.output
    env = {**os.environ, "SINQ_CONFIG": ""}
    for extra, expected in (([], "the gate rejected evaluator adapter bad-adapter"), (["--force"], "needs --reason")):
        refused = subprocess.run([sys.executable, "-m", "sinq", "models", "promote", "evaluator", "bad-adapter",
                                  "--db", db, *extra], capture_output=True, text=True, timeout=120, env=env)
        assert refused.returncode == 2, refused.stderr
        assert re.search(rf"error:.*{expected}", refused.stderr) and "Traceback" not in refused.stderr
    assert promoted(gated["warehouse"], "evaluator")["adapter_id"] == "good-adapter"
    forced = runner.invoke(app, ["models", "promote", "evaluator", "bad-adapter", "--force", "--reason",
                                 "the swap file is unrepresentative", "--db", db])
    assert forced.exit_code == 0, forced.output
    assert promoted(gated["warehouse"], "evaluator")["adapter_id"] == "bad-adapter"
    last = gate_decisions(gated["warehouse"], "evaluator", "bad-adapter")[-1]
    assert last["forced"] and last["passed"] and last["reason_text"] == "the swap file is unrepresentative"
    assert last["incumbent_adapter_id"] == "good-adapter" and last["figures"]["suites"]
    # `sinq eval gate` on the good adapter against the (forced) bad incumbent, measuring only: the bad adapter's
    # runs from the first decision stand for it, and nothing changes what the role uses
    config = gated["db"].parent / "gate.toml"
    config.write_text(f"""
[eval.gate]
max_tokens = 8
device = "cpu"
[[eval.gate.suites]]
suite = "identifier-swap"
role = "primary"
file = "{gated['swap']}"
[[eval.gate.suites]]
suite = "humaneval"
limit = 3
""")
    measured = runner.invoke(app, ["eval", "gate", "evaluator", "good-adapter", "--measure-only", "--json", "--db",
                                   db, "--config", str(config)])
    assert measured.exit_code == 0, measured.output
    decision = json.loads(next(line for line in measured.stdout.splitlines() if line.startswith("{")))
    swap = decision["figures"]["suites"]["identifier-swap:constructed.csv"]
    assert decision["passed"] and decision["incumbent_adapter_id"] == "bad-adapter"
    assert swap["incumbent_reused"] and swap["mcnemar"]["b_only"] >= 12 and swap["mcnemar"]["a_only"] == 0
    assert promoted(gated["warehouse"], "evaluator")["adapter_id"] == "bad-adapter"


# ---- issue 26: nothing is promoted without evidence


def _register(path: Path, rows: list[tuple[str, str | None, Path | str]]):
    """A real DuckDB warehouse at ``path`` with evaluator adapters ``(adapter_id, base_model, folder)``."""
    from datetime import UTC, datetime

    from sinq.warehouse.store import Warehouse

    warehouse = Warehouse(path)
    warehouse.store({"adapters": [
        {"adapter_id": name, "role": "evaluator", "base_model": base, "path": str(folder), "job_id": None,
         "snapshot_id": None, "promoted": False, "promoted_at": None, "created_at": datetime.now(UTC)}
        for name, base, folder in rows]})
    return warehouse


def _swap_gate(swap: Path) -> EvalConfig:
    """The gate on the constructed identifier-swap file alone (primary): cheap, no sandbox needed."""
    return EvalConfig(gate=GateConfig(max_tokens=8, device="cpu", suites=[
        GateSuite(suite="identifier-swap", role="primary", file=swap)]))


def _sinq(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sinq", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SINQ_CONFIG": ""})


def _one_line(done: subprocess.CompletedProcess, code: int, *expected: str) -> None:
    """Refused in one clear line (and a hint), no traceback."""
    assert done.returncode == code, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("error:"), done.stderr
    for text in expected:
        assert text in first, (text, first)


def test_a_skipped_primary_promotes_nothing_through_eval_gate(gated, tiny_model, local_backend, tmp_path) -> None:
    """Finding 1 as the red team ran it: no held-out pair yet (the game suite is skipped), a random adapter scoring
    like its base model on 2 HumanEval items; `sinq eval gate` used to promote it. Now: not promoted, said why."""
    import json

    from typer.testing import CliRunner

    from sinq.cli import app
    from sinq.warehouse.adapters import gate_decisions, list_adapters, promoted

    bad = next(a["path"] for a in list_adapters(gated["warehouse"], "evaluator") if a["adapter_id"] == "bad-adapter")
    db = tmp_path / "w.duckdb"
    warehouse = _register(db, [("random-adapter", str(tiny_model), bad)])
    config = tmp_path / "gate.toml"
    config.write_text("""
[eval.gate]
max_tokens = 8
device = "cpu"
[[eval.gate.suites]]
suite = "game"
role = "primary"
[[eval.gate.suites]]
suite = "humaneval"
limit = 2
""")
    done = CliRunner().invoke(app, ["eval", "gate", "evaluator", "random-adapter", "--json", "--db", str(db),
                                    "--config", str(config)])
    assert done.exit_code == 0, done.output
    decision = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert not decision["passed"] and not decision["promoted"]
    assert decision["figures"]["suites"]["game"]["skipped"] and decision["figures"]["rule"]["require_primary"]
    assert decision["figures"]["suites"]["humaneval"]["items"] == 2
    assert any(r.startswith("game (primary): skipped") for r in decision["reasons"])
    assert "primary suite game was skipped: not promoted" in decision["reasons"][-1]
    assert promoted(warehouse, "evaluator") is None
    assert [a["status"] for a in list_adapters(warehouse, "evaluator")] == ["rejected"]
    assert [d["passed"] for d in gate_decisions(warehouse, "evaluator")] == [False]


def test_promote_needs_a_passed_decision_or_a_stored_reason(tmp_path) -> None:
    """Finding 2: a never-gated adapter is refused; --force with a blank reason is refused; --force with a reason
    is stored as a decision row (who from getpass/socket, when, why) in the same transaction as the promotion."""
    import getpass
    import socket
    from datetime import UTC, datetime, timedelta

    from typer.testing import CliRunner

    from sinq.cli import app
    from sinq.warehouse.adapters import gate_decisions, promoted
    from sinq.warehouse.schema import LATEST

    db = tmp_path / "w.duckdb"
    warehouse = _register(db, [("never-gated", "/models/base", tmp_path / "never-gated")])
    _one_line(_sinq("models", "promote", "evaluator", "never-gated", "--db", str(db)), 2,
              "evaluator adapter never-gated was never gated", "nothing is promoted without a passed gate decision")
    for blank in ([], ["--reason", " "], ["--reason", "\t \n"]):
        refused = CliRunner().invoke(app, ["models", "promote", "evaluator", "never-gated", "--force", *blank,
                                           "--db", str(db)])
        assert getattr(refused.exception, "exit_code", None) == 2, refused.output
        assert "needs --reason TEXT, not blank" in refused.exception.message
    alone = CliRunner().invoke(app, ["models", "promote", "evaluator", "never-gated", "--reason", "x", "--db",
                                     str(db)])
    assert "--reason goes with --force" in alone.exception.message
    assert promoted(warehouse, "evaluator") is None and gate_decisions(warehouse) == []

    before = datetime.now(UTC)
    forced = CliRunner().invoke(app, ["models", "promote", "evaluator", "never-gated", "--force", "--reason",
                                      "  lab smoke test, no held-out set yet  ", "--db", str(db)])
    assert forced.exit_code == 0, forced.output
    assert promoted(warehouse, "evaluator")["adapter_id"] == "never-gated"
    [decision] = gate_decisions(warehouse, "evaluator", "never-gated")
    assert decision["forced"] and decision["passed"] and decision["incumbent_adapter_id"] is None
    assert decision["reason_text"] == "lab smoke test, no held-out set yet"
    assert decision["decided_by"] == f"{getpass.getuser()}@{socket.gethostname()}"
    created = decision["created_at"].replace(tzinfo=UTC) if decision["created_at"].tzinfo is None \
        else decision["created_at"]
    assert before - timedelta(hours=24) < created  # stored naive or aware: when it was decided
    assert decision["reasons"] == [f"forced by {decision['decided_by']}: lab smoke test, no held-out set yet",
                                   "never gated"]
    with warehouse.reading() as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == LATEST
        assert con.execute("SELECT decided_by, reason_text FROM gate_decisions").fetchall() == [
            (decision["decided_by"], "lab smoke test, no held-out set yet")]


def test_incumbent_and_candidate_on_one_base_and_checked_at_load_time(gated, tiny_model, local_backend,
                                                                       tmp_path) -> None:
    """Finding 3: --base OTHER for an adapter that records its base is refused in one line (nothing measured);
    --base for one trained elsewhere (no recorded base) runs both sides on it and the promotion records it; a
    promoted adapter whose base differs from the role's configured model is refused where agents load it."""
    from sinq.agents.backends import resolve_adapter
    from sinq.agents.config import AgentConfig
    from sinq.evals.common import EvalError
    from sinq.evals.gate import apply_decision, one_base, run_gate
    from sinq.warehouse.adapters import AdapterBaseMismatch, adapter, gate_decisions, list_adapters, promoted
    from sinq.warehouse.evals import list_evals

    paths = {a["adapter_id"]: a["path"] for a in list_adapters(gated["warehouse"], "evaluator")}
    db = tmp_path / "w.duckdb"
    warehouse = _register(db, [("good-own-base", str(tiny_model), paths["good-adapter"]),
                               ("good-elsewhere", None, paths["good-adapter"])])
    other = str(tmp_path / "another-model")
    refused = _sinq("eval", "gate", "evaluator", "good-own-base", "--base", other, "--db", str(db))
    _one_line(refused, 2, f"--base {other} disagrees with evaluator adapter good-own-base's recorded base model "
              f"{tiny_model}")
    assert gate_decisions(warehouse) == [] and list_evals(warehouse) == []
    # the same base spelled otherwise is the same base; none recorded and none given cannot be gated
    own = adapter(warehouse, "evaluator", "good-own-base")
    assert one_base("evaluator", own, None, f"{tiny_model}/") == str(tiny_model)
    with pytest.raises(EvalError, match="records no base model: pass --base"):
        one_base("evaluator", adapter(warehouse, "evaluator", "good-elsewhere"), None)

    decision = run_gate(warehouse, local_backend, "evaluator", "good-elsewhere", _swap_gate(gated["swap"]),
                        base_model=str(tiny_model))
    figures = decision["figures"]
    assert figures["candidate"] == {"model": str(tiny_model), "adapter": paths["good-adapter"]}
    assert figures["incumbent"] == {"model": str(tiny_model), "adapter": None}
    assert figures["base_model"] == decision["incumbent_model"] == str(tiny_model)
    assert decision["passed"] and apply_decision(warehouse, decision)["promoted"]
    assert promoted(warehouse, "evaluator")["base_model"] == str(tiny_model)  # recorded on promotion
    # an adapter of another base than the incumbent's is not gated against it
    with pytest.raises(AdapterBaseMismatch, match="the gate compares adapters of one base model"):
        one_base("evaluator", {**own, "base_model": other}, promoted(warehouse, "evaluator"))

    # load time: the role's configured model must be the promoted adapter's base
    agent = AgentConfig(kind="llm", backend="transformers", model=other, adapter="promoted")
    with pytest.raises(AdapterBaseMismatch) as mismatch:
        resolve_adapter(agent, "evaluator", warehouse)
    assert mismatch.value.exit_code == 2 and "\n" not in mismatch.value.message
    assert f"adapter good-elsewhere was trained on {tiny_model}, not on {other}" in mismatch.value.message
    same = agent.model_copy(update={"model": f"{tiny_model}/"})
    assert resolve_adapter(same, "evaluator", warehouse).adapter == paths["good-adapter"]
    # a served model goes by a name: its folder's name (vllm serve --served-model-name) agrees, another does not
    served = AgentConfig(kind="llm", backend="openai", base_url="http://gpu-host:8000/v1", model=tiny_model.name,
                         adapter="promoted")
    assert resolve_adapter(served, "evaluator", warehouse).adapter == paths["good-adapter"]
    with pytest.raises(AdapterBaseMismatch):
        resolve_adapter(served.model_copy(update={"model": "another-served-model"}), "evaluator", warehouse)
    config = tmp_path / "llm.toml"
    config.write_text(f"""
[agents.evaluator]
kind = "llm"
backend = "transformers"
model = "{other}"
adapter = "promoted"
""")
    _one_line(_sinq("run", "--limit", "1", "--db", str(db), "--config", str(config)), 2,
              "evaluator adapter good-elsewhere was trained on", "refused")


def test_a_promotion_during_the_gate_is_not_skipped_over(gated, tiny_model, local_backend, tmp_path) -> None:
    """Finding 4: a gate measures A against the base model; while it runs B is promoted; A's pass says nothing
    about B, so the promotion (checked in its own write transaction) refuses, A stays registered, B stays."""
    from typer.testing import CliRunner

    from sinq.cli import app
    from sinq.evals.gate import apply_decision, force_promotion, run_gate
    from sinq.warehouse.adapters import PromotionRefused, list_adapters, promote, promoted

    paths = {a["adapter_id"]: a["path"] for a in list_adapters(gated["warehouse"], "evaluator")}
    db = tmp_path / "w.duckdb"
    warehouse = _register(db, [("adapter-a", str(tiny_model), paths["good-adapter"]),
                               ("adapter-b", str(tiny_model), paths["bad-adapter"])])
    decision = run_gate(warehouse, local_backend, "evaluator", "adapter-a", _swap_gate(gated["swap"]))
    assert decision["passed"] and decision["incumbent_adapter_id"] is None
    force_promotion(warehouse, "evaluator", "adapter-b", "promoted by a colleague while the gate ran")
    applied = apply_decision(warehouse, decision)
    assert applied["passed"] and not applied["promoted"]
    assert ("measured it against the base model, but the evaluator now uses adapter-b (promoted while the gate ran)"
            in applied["reasons"][-1])
    assert promoted(warehouse, "evaluator")["adapter_id"] == "adapter-b"
    assert {a["adapter_id"]: a["status"] for a in list_adapters(warehouse, "evaluator")} == {
        "adapter-a": "registered", "adapter-b": "promoted"}
    with pytest.raises(PromotionRefused):
        promote(warehouse, "evaluator", "adapter-a", decision["decision_id"])
    by_hand = CliRunner().invoke(app, ["models", "promote", "evaluator", "adapter-a", "--db", str(db)])
    assert isinstance(by_hand.exception, PromotionRefused) and by_hand.exception.exit_code == 2
    assert promoted(warehouse, "evaluator")["adapter_id"] == "adapter-b"


def test_migration_5_gives_old_adapters_a_status(tmp_path: Path) -> None:
    """A warehouse made before the gate (schema 4): its promoted adapter becomes ``promoted``, the others
    ``registered``, and listing adapters migrates the file (no decision yet)."""
    import duckdb

    from sinq.warehouse.adapters import gate_decisions, list_adapters
    from sinq.warehouse.schema import LATEST, MIGRATIONS
    from sinq.warehouse.store import Warehouse

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR, "
                "applied_at TIMESTAMP DEFAULT current_timestamp)")
    for migration in MIGRATIONS[:4]:
        con.execute(migration.sql)
        con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    [migration.version, migration.description])
    con.execute("INSERT INTO adapters (adapter_id, role, promoted, created_at) VALUES "
                "('old-a', 'generator', TRUE, now()), ('old-b', 'generator', FALSE, now())")
    con.close()
    warehouse = Warehouse(path)
    assert {a["adapter_id"]: a["status"] for a in list_adapters(warehouse)} == {"old-a": "promoted",
                                                                                 "old-b": "registered"}
    assert gate_decisions(warehouse) == [] and LATEST >= 5
    with warehouse.reading() as check:
        assert check.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == LATEST


def test_the_curves_picture_shows_the_gate_figures() -> None:
    """The self-play picture gains a panel of gate deltas (with their intervals) once a round was gated."""
    import io

    import matplotlib.pyplot as plt

    from sinq.flows.artifacts import curves_png, gate_series

    plain = [{"round": r, "generator_validity": 0.5, "evaluator_success_rate": 0.4, "share_difficulty_10": 0.1,
              "gate": {"evaluator": {"passed": None, "measured": False}}} for r in (0, 1)]
    gated = [dict(c, gate={"evaluator": {"passed": r == 1, "suites": {
        "game": {"delta": 0.1 * r - 0.05, "low": 0.1 * r - 0.15, "high": 0.1 * r + 0.05, "p_value": None},
        "identifier-swap": None}}}) for r, c in enumerate(plain)]
    assert gate_series(plain) == {}
    assert gate_series(gated) == {"evaluator: game": [(0, -0.05, -0.15, 0.05, False),
                                                      (1, pytest.approx(0.05), pytest.approx(-0.05),
                                                       pytest.approx(0.15), True)]}
    one, two = (plt.imread(io.BytesIO(curves_png(c))) for c in (plain, gated))
    assert one.shape[0] == 300 and two.shape[0] == 550
