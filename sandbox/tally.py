"""Where sandbox time goes: each pool batch is charged, in wall seconds and executions, to the purpose its caller
declared (the generator's input search, the verdicts that settle claims, the evaluator's own search, validation,
audit). The run summary reports the shares, so a user sees what the sandbox spent its night on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

PURPOSES = ("search", "verdicts", "evaluation", "equivalence", "validation", "audit", "other")
_purpose: ContextVar[str] = ContextVar("sinq_sandbox_purpose", default="other")
_lock = threading.Lock()
_seconds: dict[str, float] = {}
_executions: dict[str, int] = {}


@contextmanager
def charged_to(purpose: str) -> Iterator[None]:
    """Pool batches run inside this block count as ``purpose`` (innermost wins)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown sandbox purpose {purpose!r}; one of {PURPOSES}")
    token = _purpose.set(purpose)
    try:
        yield
    finally:
        _purpose.reset(token)


def charge(seconds: float, executions: int) -> None:
    """Called by the pool after each batch, in the caller's context."""
    purpose = _purpose.get()
    with _lock:
        _seconds[purpose] = _seconds.get(purpose, 0.0) + seconds
        _executions[purpose] = _executions.get(purpose, 0) + executions


def snapshot() -> dict[str, dict[str, float]]:
    """Seconds and executions per purpose so far in this process (subtract two snapshots for a stretch of work)."""
    with _lock:
        return {"seconds": dict(_seconds), "executions": dict(_executions)}


def since(before: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """What was charged after ``before`` (a snapshot), per purpose, leaving out purposes with nothing."""
    now = snapshot()
    out: dict[str, dict[str, float]] = {"seconds": {}, "executions": {}}
    for kind in ("seconds", "executions"):
        for purpose, value in now[kind].items():
            delta = value - before[kind].get(purpose, 0)
            if delta:
                out[kind][purpose] = round(delta, 6) if kind == "seconds" else delta
    return out


def add(total: dict[str, dict[str, float]], part: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Sum of two tallies (the flow sums what its batches, perhaps on other hosts, report)."""
    out = {kind: dict(total.get(kind, {})) for kind in ("seconds", "executions")}
    for kind in ("seconds", "executions"):
        for purpose, value in part.get(kind, {}).items():
            out[kind][purpose] = out[kind].get(purpose, 0) + value
    return out


def shares(total: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each purpose's share of the sandbox seconds (rounded; empty when nothing ran)."""
    seconds = total.get("seconds", {})
    whole = sum(seconds.values())
    return {p: round(s / whole, 4) for p, s in sorted(seconds.items())} if whole > 0 else {}
