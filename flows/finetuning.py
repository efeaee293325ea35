"""Training flows: ``finetune`` (build a set, train a role, optionally promote; the GPU pool's deployment) and
``self_play`` (rounds of generate → build → train → promote, with the curriculum curves per round)."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from sinq.flows.artifacts import publish_curves
from sinq.flows.nightly import nightly_generation
from sinq.settings import Settings, load_settings
from sinq.tasks import stages
from sinq.tasks.training_steps import build_set, promote_adapter, record_round, train_role


def _settings(settings: dict | None) -> Settings:
    return Settings.model_validate(settings) if settings is not None else load_settings()


def _base(cfg: Settings, role: str, base: str | None) -> str:
    model = base or getattr(cfg.agents, role).model or cfg.training.base_model
    if not model:
        raise ValueError(f"no base model for the {role}: set [agents.{role}] model or [training] base_model")
    return model


@flow(name="finetune", persist_result=False)
def finetune(settings: dict | None = None, role: str = "evaluator", kind: str = "sft", base: str | None = None,
             promote: bool = False) -> dict:
    """Build the role's training set from everything stored, train on it, optionally promote the adapter."""
    cfg = _settings(settings)
    data = cfg.model_dump(mode="json")
    built = build_set(data, kind, role)
    if built is None:
        get_run_logger().warning("no data for a %s set for the %s yet: nothing trained", kind, role)
        return {"trained": False}
    result = train_role(data, kind, role, _base(cfg, role, base), built["snapshot_id"], flow_run.id)
    if promote:
        promote_adapter(data, role, result["adapter_id"])
    return {"trained": True, "snapshot": built, **result, "promoted": promote}


def _bootstrap(cfg: Settings) -> Settings:
    """Cold start: an LLM role that should use its promoted adapter, while none exists, plays as the baseline."""
    from sinq.warehouse.adapters import promoted

    warehouse = stages.warehouse_for(cfg)
    data = cfg.model_dump()
    for role in ("generator", "evaluator"):
        agent = getattr(cfg.agents, role)
        if agent.kind == "llm" and agent.adapter == "promoted" and (
                not warehouse.path.exists() or promoted(warehouse, role) is None):
            data["agents"][role] = {**data["agents"][role], "kind": "baseline"}
    return Settings.model_validate(data)


@flow(name="self-play", persist_result=False)
def self_play(settings: dict | None = None, rounds: int = 2, kind: str = "sft",
              roles: list[str] | None = None) -> dict:
    """Rounds of: generate with the current adapters → build sets → train the roles → promote → next round."""
    cfg = _settings(settings)
    logger = get_run_logger()
    roles = roles or ["generator", "evaluator"]
    first = cfg.run.round
    curves = []
    for round_ in range(first, first + rounds):
        started = datetime.now(UTC)
        round_cfg = _bootstrap(cfg.model_copy(update={"run": cfg.run.model_copy(update={"round": round_})}))
        data = round_cfg.model_dump(mode="json")
        summary = nightly_generation(data)
        trained = {}
        for role in roles:
            built = build_set(data, kind, role, list(range(first, round_ + 1)))
            if built is None:
                logger.warning("round %d: no data for the %s yet", round_, role)
                continue
            result = train_role(data, kind, role, _base(cfg, role, None), built["snapshot_id"], flow_run.id)
            promote_adapter(data, role, result["adapter_id"])
            trained[role] = result["adapter_id"]
        curve = record_round(data, round_, summary, trained, started.isoformat())
        curves.append(curve)
        logger.info("round %d: %s", round_, curve)
    publish_curves(curves)
    return {"rounds": curves}
