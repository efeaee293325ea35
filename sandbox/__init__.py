"""Differential execution: run untrusted programs in isolation and settle divergence claims (DESIGN.md §3-4)."""

from __future__ import annotations

from sinq.sandbox.config import Limits, SandboxConfig
from sinq.sandbox.outcome import Outcome, Verdict
from sinq.sandbox.pool import Job, WorkerPool
from sinq.sandbox.verify import Pair, run_tests, verify_many


def open_backend(config: SandboxConfig | None = None) -> WorkerPool:
    """The backend the configuration names (``local`` or ``docker``); close it (or use ``with``) when done."""
    config = config or SandboxConfig()
    if config.backend == "docker":
        from sinq.sandbox.docker_backend import DockerBackend

        return DockerBackend(config)
    from sinq.sandbox.local import LocalBackend

    return LocalBackend(config)


__all__ = ["Job", "Limits", "Outcome", "Pair", "SandboxConfig", "Verdict", "WorkerPool", "open_backend",
           "run_tests", "verify_many"]
