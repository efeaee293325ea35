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


def agent_rows(agents: AgentsConfig, warehouse: Warehouse | None, now: datetime) -> list[dict]:
    rows = []
    for role in ("generator", "evaluator"):
        config: AgentConfig = getattr(agents, role)
        params = agents.baseline.model_dump() if config.kind == "baseline" else config.sampling.model_dump()
        rows.append({"agent_id": agent_id(role, config, agents.baseline, warehouse), "role": role,
                     "kind": config.kind, "backend": config.backend, "model": config.model, "adapter": config.adapter,
                     "base_model": config.model, "params": json.dumps(params), "created_at": now})
    return rows
