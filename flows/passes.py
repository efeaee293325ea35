"""Which sampling pass a nightly run belongs to (issue 28). A night is a pass: its id is part of every generator and
evaluator request key, so a new night asks for new samples while a rerun of the same night (a retry, a resumed run
after a kill) finds its work done. Plain Python: the flow hands in Prefect's scheduled start."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sinq.flows.config import RunConfig


def pass_for(run: RunConfig, scheduled: datetime | None = None) -> str:
    """``[run] pass_id`` (or ``--pass``) when set; else the date the flow run was scheduled for, in the schedule's
    timezone: a deployment's run at 02:00 and its retry at 09:00 are one night, and a manual run (scheduled "now")
    is the night of its day."""
    if run.pass_id:
        return run.pass_id
    when = scheduled or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(ZoneInfo(run.timezone)).strftime("%Y-%m-%d")
