"""Prefect tasks of the training flows: build a set, train on it, gate and promote the result, record the round.
Parameters are plain JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from sinq import code_version
from sinq.sandbox.shared import shared_pool
from sinq.settings import Settings
from sinq.tasks import stages
from sinq.training.datasets import snapshot
from sinq.training.train import train
from sinq.warehouse import queries
from sinq.warehouse.adapters import force_promote

OPTIONS = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="build-training-set", task_run_name="build-{kind}-{role}", **OPTIONS)
def build_set(settings: dict, kind: str, role: str, rounds: list[int] | None = None) -> dict | None:
    """None when the warehouse has no data for this set yet (the role is not trained this round)."""
    cfg = Settings.model_validate(settings)
    build = cfg.training.build.model_copy(update={"rounds": rounds})
    try:
        return snapshot(stages.warehouse_for(cfg), kind, role, build, cfg.training.decontamination, cfg.sources.split)
    except ValueError:
        return None


@task(name="train", task_run_name="train-{kind}-{role}", **OPTIONS)
def train_role(settings: dict, kind: str, role: str, base: str, snapshot_id: str, run_id: str | None = None) -> dict:
    cfg = Settings.model_validate(settings)
    sandbox = None
    if kind == "grpo":
        sandbox, _ = shared_pool(cfg.sandbox)
    return train(stages.warehouse_for(cfg), kind, role, base, snapshot_id, cfg.training.train, sandbox, run_id)


@task(name="promote", task_run_name="promote-{role}", **OPTIONS)
def promote_adapter(settings: dict, role: str, adapter_id: str) -> dict:
    """Promote unmeasured (``[eval.gate] enabled = false``): stored as a forced decision that says so, so that no
    promotion is without its decision row."""
    cfg = Settings.model_validate(settings)
    decision = force_promote(stages.warehouse_for(cfg), role, adapter_id,
                             "[eval.gate] enabled = false: promoted without measuring it")
    return json.loads(json.dumps(decision, default=str))


@task(name="gate", task_run_name="gate-{role}", **OPTIONS)
def gate_adapter(settings: dict, role: str, adapter_id: str, base: str | None = None) -> dict:
    """The promotion gate: measure the adapter against the role's incumbent on ``[eval.gate]``'s suites, promote it
    only on a pass (and only while that incumbent is still the role's adapter), else mark it rejected (the role keeps
    its adapter); the decision is logged and published as a markdown artifact with the comparison table."""
    from sinq.evals.gate import apply_decision, decision_markdown, run_gate

    cfg = Settings.model_validate(settings)
    logger = get_run_logger()
    warehouse = stages.warehouse_for(cfg)
    pool, _ = shared_pool(cfg.sandbox)
    decision = run_gate(warehouse, pool, role, adapter_id, cfg.eval, base_model=base, splits=cfg.sources.split,
                        code_version=code_version())
    decision = apply_decision(warehouse, decision)
    verdict = ("promoted" if decision["promoted"] else "passed but not promoted (the role keeps its current adapter)"
               if decision["passed"] else "rejected (the role keeps its current adapter)")
    logger.info("gate %s: %s adapter %s %s against %s\n%s", decision["decision_id"], role, adapter_id, verdict,
                decision["incumbent_adapter_id"] or f"the base model {decision['incumbent_model']}",
                "\n".join(decision["reasons"]))
    create_markdown_artifact(key=f"gate-{role}", markdown=decision_markdown(decision),
                             description=f"promotion gate of the {role} adapter {adapter_id}")
    return json.loads(json.dumps(decision, default=str))


@task(name="record-round", task_run_name="record-round-{round_}", **OPTIONS)
def record_round(settings: dict, round_: int, summary: dict, trained: dict, started_at: str,
                 gates: dict | None = None) -> dict:
    """The round's curve (``round_stats`` of that round, what was trained, what the run verified, the gate's
    figures per role), stored in ``rounds`` and returned for the curves artifact."""
    cfg = Settings.model_validate(settings)
    warehouse = stages.warehouse_for(cfg)
    curve = queries.round_curve(warehouse, round_) | {"trained": trained,
                                                      "verified_pairs_run": summary["verified_pairs"],
                                                      "gate": gates or {}}
    warehouse.store({"rounds": [{
        "round": round_, "generator_agent_id": summary["generator"], "evaluator_agent_id": summary["evaluator"],
        "curves": json.dumps(curve, default=str), "started_at": datetime.fromisoformat(started_at),
        "finished_at": datetime.now(UTC)}]})
    return curve
