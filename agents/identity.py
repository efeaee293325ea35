"""Who plays: the stable id of each role's agent (what its samples and answers are keyed by) and its row."""

from __future__ import annotations

import json
from datetime import datetime

from sinq.agents.config import AgentConfig, AgentsConfig, BaselineConfig
from sinq.warehouse.records import content_id
from sinq.warehouse.store import Warehouse


def agent_id(role: str, config: AgentConfig, baseline: BaselineConfig, warehouse: Warehouse | None) -> str:
    """A baseline is named by its budgets; an LLM agent by its model, the adapter it resolves to (``promoted`` is
    looked up in ``warehouse``) and its sampling."""
    if config.kind == "baseline":
        name = "baseline-mutation" if role == "generator" else "baseline-fuzz"
        return f"{role}:{name}:{content_id(baseline.model_dump_json())[:8]}"
    from sinq.agents.backends import llm_agent_id, resolve_adapter

    return llm_agent_id(role, resolve_adapter(config, role, warehouse))


def maker_id(agents: AgentsConfig, warehouse: Warehouse | None) -> str:
    """The equivalent-pair maker is named by what makes its candidates: its config (less the evaluator share, which
    changes what the evaluator is shown, not what is made), the baseline budgets its fuzz inputs come from, and the
    generator's model when an LLM proposes."""
    config = agents.equivalence.model_dump(mode="json", exclude={"evaluator_share"})
    llm = agent_id("generator", agents.generator, agents.baseline, warehouse) if config["proposer"] != "rewrite" \
        else None
    return f"equivalence:{config['proposer']}:{content_id(config, agents.baseline.model_dump_json(), llm)[:8]}"


def agent_rows(agents: AgentsConfig, warehouse: Warehouse | None, now: datetime) -> list[dict]:
    rows = []
    for role in ("generator", "evaluator"):
        config: AgentConfig = getattr(agents, role)
        params = agents.baseline.model_dump() if config.kind == "baseline" else config.sampling.model_dump()
        rows.append({"agent_id": agent_id(role, config, agents.baseline, warehouse), "role": role,
                     "kind": config.kind, "backend": config.backend, "model": config.model, "adapter": config.adapter,
                     "base_model": config.model, "params": json.dumps(params), "created_at": now})
    equivalence = agents.equivalence
    if equivalence.enabled:
        llm = equivalence.proposer != "rewrite"
        rows.append({"agent_id": maker_id(agents, warehouse), "role": "equivalence",
                     "kind": "llm" if llm else "baseline", "backend": agents.generator.backend if llm else None,
                     "model": agents.generator.model if llm else None, "adapter": None,
                     "base_model": agents.generator.model if llm else None,
                     "params": equivalence.model_dump_json(exclude={"evaluator_share"}), "created_at": now})
    return rows
