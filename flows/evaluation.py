"""The ``evaluate`` flow (a deployment on the GPU pool, and what ``finetune --no-promote`` runs on its new
adapter): a role's agent on ``[eval.gate]``'s suites, each run stored, shown in the UI as a table and a picture of
every suite's headline metric with its interval."""

from __future__ import annotations

from prefect import flow

from sinq.flows.artifacts import publish_evaluation
from sinq.settings import Settings, load_settings
from sinq.tasks.evaluation import evaluate_role


@flow(name="evaluate", persist_result=False)
def evaluate(settings: dict | None = None, role: str = "evaluator", adapter_id: str | None = None,
             base: str | None = None) -> dict:
    """Measure the role's registered ``adapter_id`` (default: its promoted adapter, or the base model)."""
    cfg = Settings.model_validate(settings) if settings is not None else load_settings()
    result = evaluate_role(cfg.model_dump(mode="json"), role, adapter_id, base)
    publish_evaluation(result)
    return result
