"""Problem validation: a problem is usable only if its reference solution passes its own tests in the sandbox.
Orchestrated here (sources/ only loads, sandbox/ only runs); tasks/stages.py calls it once per new problem."""

from __future__ import annotations

from collections import Counter

from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.errors import SandboxUnavailable
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.verify import INFRASTRUCTURE_REASONS, run_tests
from sinq.sources.problem import Problem

RECHECKED = ("fails_own_tests:timeout", "fails_own_tests:crashed", "fails_own_tests:resource_limit")
"""Reasons that may describe the machine or the budget rather than the solution: re-checked by every later run
before they are trusted (a loaded machine, a too-small budget), never believed across runs."""


def validation_key(config: SandboxConfig) -> str:
    """What a validation depends on: the limits, the runner, the backend and the interpreter. Another key (say, a
    sane timeout after a tiny one) validates again."""
    from sinq.sandbox.image import runner_sha
    from sinq.warehouse.records import content_id

    return content_id("validation", config.limits.model_dump(mode="json"), runner_sha(), config.backend,
                      config.python, config.docker.image if config.backend == "docker" else None)


def needs_recheck(reason: str | None) -> bool:
    return reason is not None and reason.startswith(RECHECKED)


def _reason(outcome) -> str:
    if outcome.kind == "raised":
        return f"fails_own_tests:{outcome.type}"
    if outcome.kind == "invalid":
        return f"original_{outcome.reason}" if outcome.reason == "fails_to_load" else f"invalid:{outcome.reason}"
    return f"fails_own_tests:{outcome.kind}"


def validate(problems: list[Problem], backend: WorkerPool) -> list[Problem]:
    """Run every loaded problem's tests; set ``reason`` on those that fail (kept, never used). A sandbox that could
    not run a problem (its worker lost even after replacement) raises ``SandboxUnavailable``: infrastructure, retried
    and reported, never a validation result."""
    runnable = [p for p in problems if p.reason is None]
    outcomes = run_tests(backend, [(p.program, p.tests) for p in runnable])
    broken = [o for o in outcomes if o.kind == "crashed" and o.reason in INFRASTRUCTURE_REASONS]
    if broken:
        raise SandboxUnavailable(f"the sandbox could not run {len(broken)} of {len(outcomes)} problem tests "
                                 f"({broken[0].message}); nothing was recorded as a validation result")
    for problem, outcome in zip(runnable, outcomes, strict=True):
        if outcome.kind != "returned":
            problem.reason = _reason(outcome)
    return problems


def summary(problems: list[Problem]) -> dict:
    reasons = Counter(p.reason for p in problems if p.reason is not None)
    return {"loaded": len(problems), "valid": sum(p.reason is None for p in problems),
            "invalid": sum(reasons.values()), "reasons": dict(reasons.most_common())}
