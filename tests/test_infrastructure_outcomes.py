"""Infrastructure never becomes data: a sandbox that failed to run a side is never one half of a verdict, limits
outside a sane range are refused at config time, and a long budget does not kill the worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sinq.sandbox import Pair, verify_many
from sinq.sandbox.config import Limits
from sinq.sandbox.pool import WorkerPool

ONE = "def f(x):\n    return x + 1\n"


class _DeadSandbox(WorkerPool):
    """A test double: a pool whose workers are lost on every job. A real worker cannot be made to die on demand
    (programs are contained by design), so the pool's own 'lost worker' outcome is produced directly."""

    backend = "double"

    def __init__(self, config) -> None:
        self.config = config

    def run(self, jobs):
        return [self._lost(job.hash_seed or 1, "worker exited (code 1)") for job in jobs]


def test_a_dead_worker_on_both_sides_is_not_same(local_backend) -> None:
    verdict = verify_many([Pair("a", ONE, "def f(x):\n    return x + 2\n", "f", {"x": 1})],
                          _DeadSandbox(local_backend.config))[0]
    assert (verdict.verdict, verdict.reason) == ("invalid", "sandbox_error")
    assert "worker exited" in (verdict.detail or "")


@pytest.mark.parametrize("timeout", [0.001, 0.0, 1e7, -1.0])
def test_limits_outside_a_sane_range_are_refused(timeout: float) -> None:
    with pytest.raises(ValidationError):
        Limits(timeout_s=timeout)


def test_a_long_budget_does_not_kill_the_worker(local_backend) -> None:
    """poll() takes a C int of milliseconds; a 3000 s budget once overflowed it and the worker died."""
    config = local_backend.config.model_copy(update={"limits": local_backend.config.limits.model_copy(
        update={"timeout_s": 3000.0})})
    verdict = verify_many([Pair("a", ONE, "def f(x):\n    return x + 2\n", "f", {"x": 1})], local_backend, config)[0]
    assert (verdict.verdict, verdict.reason) == ("diverges", "different_value")


def test_the_sinq_cli_refuses_an_insane_timeout_in_one_line(tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys

    source = tmp_path / "p.jsonl"
    source.write_text(json.dumps({"id": "a", "original": ONE, "variant": ONE, "entry_point": "f",
                                  "input": {"x": 1}}) + "\n")
    done = subprocess.run([sys.executable, "-m", "sinq.cli", "verify", str(source), "--timeout", "1e7"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "SINQ_CONFIG": ""})
    assert done.returncode == 2
    assert "timeout_s" in done.stderr and "Traceback" not in done.stderr
