"""The pieces behind the run's efficiency figures: sandbox time charged to its caller's purpose, and CPU seconds of
a process tree read from /proc (a busy child counts while it is alive and after it was reaped)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sinq.sandbox import tally
from sinq.sandbox.pool import Job
from sinq.tasks import cpu


def test_pool_batches_are_charged_to_the_innermost_declared_purpose(local_backend) -> None:
    job = Job(program="def f(x):\n    return x + 1\n", entry_point="f", input="{'x': 1}",
              limits=local_backend.config.limits)
    before = tally.snapshot()
    with tally.charged_to("search"):
        local_backend.run([job, job])
        with tally.charged_to("verdicts"):
            local_backend.run([job])
    local_backend.run([job])
    charged = tally.since(before)
    assert charged["executions"] == {"search": 2, "verdicts": 1, "other": 1}
    assert all(seconds > 0 for seconds in charged["seconds"].values())
    total = tally.add(charged, charged)
    assert total["executions"]["search"] == 4
    assert abs(sum(tally.shares(total).values()) - 1.0) < 1e-3
    with pytest.raises(ValueError, match="unknown sandbox purpose"), tally.charged_to("searching"):
        pass


SPIN = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"


def test_tree_cpu_counts_a_busy_child_alive_and_reaped() -> None:
    before = cpu.tree_cpu_s()
    child = subprocess.Popen([sys.executable, "-c", SPIN + "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        while cpu.descendants(cpu.where()["pid"]).get(child.pid, 0.0) < 0.5:
            assert child.poll() is None
            time.sleep(0.05)
        alive = cpu.tree_cpu_s() - before
    finally:
        child.communicate(b"")
    reaped = cpu.tree_cpu_s() - before
    assert alive >= 0.5 and reaped >= alive - 0.05
    assert child.pid not in cpu.descendants(cpu.where()["pid"])


def test_covered_time_counts_overlapping_spans_once_and_clips_to_the_run() -> None:
    from sinq.flows.plays import covered

    spans = [(10.0, 20.0), (12.0, 18.0), (15.0, 25.0), (30.0, 35.0), (0.0, 2.0), (40.0, 50.0)]
    assert covered(spans, 1.0, 45.0) == pytest.approx(1.0 + 15.0 + 5.0 + 5.0)
    assert covered([], 0.0, 10.0) == 0.0
    assert covered([(5.0, 6.0), (5.0, 6.0)], 0.0, 10.0) == pytest.approx(1.0)
