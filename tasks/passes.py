"""The sampling pass in the plan and play steps (issue 28): which of a batch's problems the generator skips as
exhausted (recorded with the batch), what each of the others already holds (handed to the baseline generator so a
new night explores instead of repeating), and the pass's figures for the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sinq.agents.exploration import Exploration
from sinq.settings import Settings
from sinq.warehouse import passes as pass_queries
from sinq.warehouse.store import Warehouse


@dataclass
class PassPlan:
    todo: list[str]
    exploration: Exploration | None = None
    rows: dict[str, list[dict]] = field(default_factory=dict)
    exhausted: int = 0


def plan_pass(settings: Settings, warehouse: Warehouse, generator: str, run_id: str, todo: list[str],
              baseline: bool) -> PassPlan:
    """``todo`` less the problems this generator has exhausted (no new unique verified pair in its last
    ``[run] exhausted_after`` passes), each recorded as skipped in this pass; for a baseline generator, the stored
    variant keys of the rest. Without a pass id (a stage called outside the nightly flow) nothing changes."""
    pass_id = settings.run.pass_id
    if pass_id is None or not todo:
        return PassPlan(todo)
    exhausted = pass_queries.exhausted_problems(warehouse, todo, generator, pass_id, settings.run.exhausted_after)
    now = datetime.now(UTC)
    rows = {"exhausted_problems": [{"problem_id": problem_id, "generator_agent_id": generator, "pass_id": pass_id,
                                    "after_passes": passes, "run_id": run_id, "created_at": now}
                                   for problem_id, passes in sorted(exhausted.items())]} if exhausted else {}
    left = [i for i in todo if i not in exhausted]
    exploration = None
    if baseline and left:
        exploration = Exploration(pass_id, pass_queries.stored_variant_keys(warehouse, left))
    return PassPlan(left, exploration, rows, len(exhausted))


def explore_with(agent, exploration: Exploration | None) -> None:
    """Hand the planned exploration to a generator that explores (the baseline); others ignore it."""
    if exploration is not None and hasattr(agent, "exploration"):
        agent.exploration = exploration


def pass_summary(settings: Settings, warehouse: Warehouse, run_id: str, generator: str) -> dict | None:
    """The pass's figures (pass_id, its samples, unique pairs and duplicates over every run of the pass, exhausted
    problems skipped); None outside a pass."""
    if settings.run.pass_id is None:
        return None
    return pass_queries.pass_figures(warehouse, run_id, settings.run.pass_id, generator)
