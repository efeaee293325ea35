"""Problem validation: a problem is usable only if its reference solution passes its own tests in the sandbox.
Orchestrated here (sources/ only loads, sandbox/ only runs); tasks/stages.py calls it once per new problem."""

from __future__ import annotations

from collections import Counter

from sandbox.pool import WorkerPool
from sandbox.verify import run_tests
from sources.problem import Problem


def _reason(outcome) -> str:
    if outcome.kind == "raised":
        return f"fails_own_tests:{outcome.type}"
    if outcome.kind == "invalid":
        return f"original_{outcome.reason}" if outcome.reason == "fails_to_load" else f"invalid:{outcome.reason}"
    return f"fails_own_tests:{outcome.kind}"


def validate(problems: list[Problem], backend: WorkerPool) -> list[Problem]:
    """Run every loaded problem's tests; set ``reason`` on those that fail (kept, never used)."""
    runnable = [p for p in problems if p.reason is None]
    outcomes = run_tests(backend, [(p.program, p.tests) for p in runnable])
    for problem, outcome in zip(runnable, outcomes, strict=True):
        if outcome.kind != "returned":
            problem.reason = _reason(outcome)
    return problems


def summary(problems: list[Problem]) -> dict:
    reasons = Counter(p.reason for p in problems if p.reason is not None)
    return {"loaded": len(problems), "valid": sum(p.reason is None for p in problems),
            "invalid": sum(reasons.values()), "reasons": dict(reasons.most_common())}
