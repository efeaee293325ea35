"""Worker pool resilience on the local backend: a killed worker is replaced and nothing is lost."""

from __future__ import annotations

import os
import signal

from sinq.sandbox import Job
from sinq.sandbox.local import LocalBackend
from tests.conftest import fast_config

ONE = "def f(x):\n    return x + 1\n"


def test_killed_worker_is_replaced_and_batch_rerun(local_backend) -> None:
    seed = local_backend.config.hash_seeds[0]
    victim = local_backend.worker(seed, 0)
    os.kill(victim.proc.pid, signal.SIGKILL)
    before = local_backend.replaced
    jobs = [Job(program=ONE, entry_point="f", input=f"{{'x': {i}}}", hash_seed=seed) for i in range(50)]
    outcomes = local_backend.run(jobs)
    assert [o.value for o in outcomes] == [str(i + 1) for i in range(50)]
    assert local_backend.replaced == before + 1


def test_two_pools_never_share_uids(local_backend) -> None:
    with LocalBackend(fast_config()) as other:
        other.start()
        assert other._uid_block.base != local_backend._uid_block.base
        outcome = other.run([Job(program="import os\ndef f():\n    return os.getuid()\n", entry_point="f")])[0]
        assert outcome.kind == "returned"
        assert other._uid_block.base <= int(outcome.value) < other._uid_block.base + (1 << 14)


def test_children_see_only_the_interpreter(local_backend) -> None:
    program = ("import os, sys\ndef f():\n"
               "    return sorted(os.listdir('/')), sys.prefix, os.getcwd(), dict(os.environ)\n")
    outcome = local_backend.run([Job(program=program, entry_point="f")])[0]
    assert outcome.kind == "returned", outcome.message
    assert "'root'" not in outcome.value and "'home'" not in outcome.value and "'work'" not in outcome.value
    assert "/opt/python" in outcome.value or "/usr" in outcome.value
    assert "PYTHONHASHSEED" not in outcome.value
    assert "'/tmp/work'" in outcome.value


def test_configured_interpreter_runs_the_programs(local_backend) -> None:
    from sinq.sandbox.local import base_interpreter

    python, _ = base_interpreter()
    with LocalBackend(fast_config(python=python)) as pool:
        outcome = pool.run([Job(program="import sys\ndef f():\n    return sys.version.split()[0]\n",
                                entry_point="f")])[0]
        assert outcome.value.strip("'") == pool.info()["python"]
