"""Training flows: ``finetune`` (build a set, train a role, optionally promote; the GPU pool's deployment) and
``self_play`` (rounds of generate → build → train → promote, with the curriculum curves per round)."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_image_artifact, create_markdown_artifact
from prefect.runtime import flow_run

from sinq.flows.artifacts import plt
from sinq.flows.nightly import nightly_generation
from sinq.settings import Settings, load_settings
from sinq.tasks import stages
from sinq.tasks.training_steps import build_set, promote_adapter, train_role


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


def round_curve(cfg: Settings, round_: int) -> dict:
    with stages.warehouse_for(cfg).reading() as con:
        cursor = con.execute("SELECT * FROM round_stats WHERE round = ?", [round_])
        names = [c[0] for c in cursor.description]
        rows = cursor.fetchall()
    curve = dict(zip(names, rows[0], strict=True)) if rows else {"round": round_}
    return {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
            for k, v in curve.items()}


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


def curves_png(curves: list[dict]) -> bytes:
    figure, axis = plt.subplots(figsize=(6, 3), dpi=100)
    rounds = [c["round"] for c in curves]
    for key, name in (("generator_validity", "generator validity"),
                      ("evaluator_success_rate", "evaluator success"), ("share_difficulty_10", "share difficulty 10")):
        axis.plot(rounds, [c.get(key) or 0.0 for c in curves], marker="o", label=name)
    axis.set_xlabel("round")
    axis.set_ylim(-0.05, 1.05)
    axis.set_xticks(rounds)
    axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


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
        curve = round_curve(round_cfg, round_) | {"trained": trained, "verified_pairs_run": summary["verified_pairs"]}
        curves.append(curve)
        stages.warehouse_for(cfg).store({"rounds": [{
            "round": round_, "generator_agent_id": summary["generator"], "evaluator_agent_id": summary["evaluator"],
            "curves": json.dumps(curve, default=str), "started_at": started, "finished_at": datetime.now(UTC)}]})
        logger.info("round %d: %s", round_, curve)
    png = curves_png(curves)
    create_image_artifact(f"data:image/png;base64,{base64.b64encode(png).decode()}", key="self-play-curves",
                          description="generator validity, evaluator success, share of difficulty 10 per round")
    table = "\n".join(f"| {c['round']} | {c.get('generator_validity')} | {c.get('evaluator_success_rate')} | "
                      f"{c.get('share_difficulty_10')} | {c.get('difficulty_histogram')} | {c['trained']} |"
                      for c in curves)
    create_markdown_artifact("# Self-play curves\n\n| round | generator validity | evaluator success | share 10 | "
                             f"difficulty histogram | trained |\n|---|---|---|---|---|---|\n{table}\n",
                             key="self-play-summary")
    return {"rounds": curves}
