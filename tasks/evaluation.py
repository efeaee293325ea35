"""The Prefect task of the ``evaluate`` flow: a role's agent (a registered adapter, the promoted one, or the base
model) measured once on ``[eval.gate]``'s suites, every run stored in the warehouse. Parameters are plain JSON."""

from __future__ import annotations

import json

from prefect import get_run_logger, task

from sinq import code_version
from sinq.evals.suites import measure, side_for_role
from sinq.sandbox.shared import shared_pool
from sinq.settings import Settings
from sinq.tasks import stages
from sinq.tasks.training_steps import OPTIONS


@task(name="evaluate", task_run_name="evaluate-{role}", **OPTIONS)
def evaluate_role(settings: dict, role: str, adapter_id: str | None = None, base: str | None = None) -> dict:
    """``{role, model, adapter, adapter_id, suites}``: one summary per suite (its metrics with intervals and eval
    id, or why it was skipped)."""
    cfg = Settings.model_validate(settings)
    warehouse = stages.warehouse_for(cfg)
    pool, _ = shared_pool(cfg.sandbox)
    model, adapter, chosen = side_for_role(warehouse, role, base or getattr(cfg.agents, role).model
                                           or cfg.training.base_model, adapter_id)
    suites = measure(warehouse, pool, cfg.eval, role, model, adapter, cfg.eval.gate.suites, cfg.sources.split,
                     code_version())
    logger = get_run_logger()
    for s in suites:
        if s.get("skipped"):
            logger.info("%s: skipped (%s)", s["label"], s["skipped"])
            continue
        m = s["metrics"].get(s["headline"]) or {}
        logger.info("%s: %s %s [%s, %s] on %d queries (eval %s)", s["label"], s["headline"], m.get("value"),
                    m.get("low"), m.get("high"), s["n"], s["eval_id"])
    return json.loads(json.dumps({"role": role, "model": model, "adapter": adapter, "adapter_id": chosen,
                                  "suites": suites}, default=str))
