"""What the sandbox raises when it cannot do its job (either backend): infrastructure, never a verdict."""

from __future__ import annotations

from sinq.game.errors import SinqError


class SandboxUnavailable(SinqError, RuntimeError):
    """The isolation the configuration requires is missing on this machine, or the sandbox lost executions: retried
    as infrastructure, then reported (exit 3); never stored as data."""

    exit_code = 3
