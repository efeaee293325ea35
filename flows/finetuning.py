"""Training flows: ``finetune`` (build a set, train a role, optionally promote; the GPU pool's deployment) and
``self_play`` (rounds of generate → build → train → promote, with the curriculum curves per round). With
``[eval.gate] enabled`` a trained adapter is promoted only when the promotion gate passes it."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from sinq.flows.artifacts import publish_curves, publish_gate_curves
from sinq.flows.evaluation import evaluate
from sinq.flows.nightly import nightly_generation
from sinq.settings import Settings, load_settings
from sinq.tasks import stages
from sinq.tasks.training_steps import build_set, gate_adapter, promote_adapter, record_round, train_role


def _settings(settings: dict | None) -> Settings:
    return Settings.model_validate(settings) if settings is not None else load_settings()


def _base(cfg: Settings, role: str, base: str | None) -> str:
    """What the role's adapter is trained on (and so gated on): ``base``, else the role's model, else [training]
    base_model; a served model's name (openai backend) is no folder to train from, so base_model comes first."""
    agent = getattr(cfg.agents, role)
    served = agent.backend == "openai"
    model = base or (None if served else agent.model) or cfg.training.base_model or agent.model
    if not model:
        raise ValueError(f"no base model for the {role}: set [agents.{role}] model or [training] base_model")
    return model


def _promote(cfg: Settings, data: dict, role: str, adapter_id: str, base: str) -> dict:
    """Through the gate when ``[eval.gate] enabled`` (promoted only on a pass), else straight (and the log says
    nothing was measured). Returns ``{promoted, gate}``; ``gate`` is the decision or None."""
    logger = get_run_logger()
    if not cfg.eval.gate.enabled:
        promote_adapter(data, role, adapter_id)
        logger.warning("%s adapter %s promoted without measuring it ([eval.gate] enabled = false)", role, adapter_id)
        return {"promoted": True, "gate": None}
    decision = gate_adapter(data, role, adapter_id, base)
    if not decision["promoted"]:
        logger.warning("%s adapter %s not promoted (%s): the role goes on with its current adapter", role, adapter_id,
                       decision["reasons"][-1] if decision["reasons"] else "rejected")
    return {"promoted": bool(decision["promoted"]), "gate": decision}


def _gate_figures(decision: dict | None) -> dict | None:
    """The round curve's share of a decision: passed, and per suite the delta and p-value."""
    if decision is None:
        return None
    suites = decision["figures"].get("suites", {})
    return {"decision_id": decision["decision_id"], "passed": decision["passed"],
            "promoted": decision.get("promoted", decision["passed"]), "reasons": decision["reasons"],
            "suites": {label: None if f.get("skipped") else {
                "delta": f["delta"]["value"], "low": f["delta"]["low"], "high": f["delta"]["high"],
                "p_value": f["p_value"], "role": f["role"], "candidate": f["rate_candidate"],
                "incumbent": f["rate_incumbent"]} for label, f in suites.items()}}


@flow(name="finetune", persist_result=False)
def finetune(settings: dict | None = None, role: str = "evaluator", kind: str = "sft", base: str | None = None,
             promote: bool = False) -> dict:
    """Build the role's training set from everything stored, train on it, then gate and promote the adapter
    (``promote``) or only measure it on the gate's suites (the ``evaluate`` flow)."""
    cfg = _settings(settings)
    data = cfg.model_dump(mode="json")
    built = build_set(data, kind, role)
    if built is None:
        get_run_logger().warning("no data for a %s set for the %s yet: nothing trained", kind, role)
        return {"trained": False}
    model = _base(cfg, role, base)
    result = train_role(data, kind, role, model, built["snapshot_id"], flow_run.id)
    measured = None
    if promote:
        outcome = _promote(cfg, data, role, result["adapter_id"], model)
    else:
        outcome = {"promoted": False, "gate": None}
        if cfg.eval.gate.enabled:
            measured = evaluate(data, role, result["adapter_id"], model)
    return {"trained": True, "snapshot": built, **result, "promoted": outcome["promoted"],
            "gate": _gate_figures(outcome["gate"]), "evaluation": measured}


@flow(name="gate", persist_result=False)
def gate(settings: dict | None = None, role: str = "evaluator", adapter_id: str = "", base: str | None = None) -> dict:
    """Gate one registered adapter (promoted on a pass, rejected otherwise): what finetune and self_play do after
    training, for an adapter trained elsewhere or a changed gate."""
    cfg = _settings(settings)
    return gate_adapter(cfg.model_dump(mode="json"), role, adapter_id, base)


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
    """Rounds of: generate with the current adapters → build sets → train the roles → gate and promote → next
    round (a rejected adapter leaves the role on its current one)."""
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
        trained, gates = {}, {}
        for role in roles:
            built = build_set(data, kind, role, list(range(first, round_ + 1)))
            if built is None:
                logger.warning("round %d: no data for the %s yet", round_, role)
                continue
            model = _base(cfg, role, None)
            result = train_role(data, kind, role, model, built["snapshot_id"], flow_run.id)
            outcome = _promote(cfg, data, role, result["adapter_id"], model)
            trained[role] = result["adapter_id"]
            gates[role] = _gate_figures(outcome["gate"]) or {"passed": None, "measured": False}
            if not outcome["promoted"]:
                logger.info("round %d: the %s goes on with its current adapter", round_, role)
        curve = record_round(data, round_, summary, trained, started.isoformat(), gates)
        curves.append(curve)
        logger.info("round %d: %s", round_, curve)
    publish_curves(curves)
    if cfg.eval.gate.enabled:
        publish_gate_curves(curves)
    return {"rounds": curves}
