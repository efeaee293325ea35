"""Sandbox throughput benchmarks, each against a baseline measured in the same run (DESIGN.md §7)."""

from __future__ import annotations

import os
import subprocess
import time

from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.local import base_interpreter
from sinq.sandbox.pool import Job, WorkerPool

BENCH_PROGRAMS = [
    "def f(x):\n    return x + 1\n",
    "def f(x):\n    return sorted(str(x))\n",
    "def f(x):\n    return {i: i * i for i in range(x % 17)}\n",
    "def f(x):\n    if x % 7 == 0:\n        raise ValueError(x)\n    return x // 3\n",
]


def bench_jobs(config: SandboxConfig, executions: int) -> list[Job]:
    """Small, realistic calls spread over both hash seeds (as the verifier spreads them)."""
    seeds = config.hash_seeds
    return [Job(program=BENCH_PROGRAMS[i % len(BENCH_PROGRAMS)], entry_point="f", input=f"{{'x': {i}}}",
                hash_seed=seeds[i % len(seeds)]) for i in range(executions)]


RAW_FORK_LOOP = """
import os, resource, sys, time
n = int(sys.argv[1])
started = time.perf_counter()
for _ in range(n):
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (2, 3))
            os.write(wfd, b"ok")
        finally:
            os._exit(0)
    os.close(wfd)
    os.read(rfd, 16)
    os.close(rfd)
    os.waitpid(pid, 0)
print(n / (time.perf_counter() - started))
"""


def raw_fork_rate(executions: int, config: SandboxConfig | None = None) -> float:
    """The floor: fork + pipe + setrlimit + one write + wait, serially, no isolation, no program, run in a bare
    interpreter (``python -S``) so that the orchestrator's own size does not slow the baseline down."""
    python, _ = base_interpreter(config.python if config else None)
    done = subprocess.run([python, "-S", "-c", RAW_FORK_LOOP, str(executions)], capture_output=True, text=True,
                          check=True, env={"PATH": "/usr/bin:/bin"})
    return float(done.stdout.strip())


def pool_rate(backend: WorkerPool, executions: int) -> tuple[float, int]:
    backend.start()
    backend.run(bench_jobs(backend.config, min(200, executions)))
    return _timed_pool(backend, bench_jobs(backend.config, executions))


def _timed_pool(backend: WorkerPool, jobs: list[Job]) -> tuple[float, int]:
    started = time.perf_counter()
    outcomes = backend.run(jobs)
    elapsed = time.perf_counter() - started
    failed = sum(o.kind not in ("returned", "raised") for o in outcomes)
    return len(jobs) / elapsed, failed


def interleaved_rates(backend: WorkerPool, executions: int, baseline_runs: int,
                      rounds: int = 4) -> tuple[float, int, float]:
    """Pool and raw-fork rates measured in alternating rounds, so that both see the same load from whatever else
    runs on the machine (on a shared 2-core host, minutes apart they do not): total executions over total time."""
    backend.start()
    backend.run(bench_jobs(backend.config, min(200, executions)))
    jobs = bench_jobs(backend.config, executions)
    pool_time = base_time = 0.0
    failed = 0
    for index in range(rounds):
        part = jobs[index * len(jobs) // rounds : (index + 1) * len(jobs) // rounds]
        rate, bad = _timed_pool(backend, part)
        pool_time += len(part) / rate
        failed += bad
        runs = max(1, baseline_runs // rounds)
        base_time += runs / raw_fork_rate(runs, backend.config)
    base_runs = max(1, baseline_runs // rounds) * rounds
    return executions / pool_time, failed, base_runs / base_time


def docker_run_rate(backend, runs: int) -> float:
    """One `docker run` per execution, the way a naive checker would use Docker."""
    client = backend.client
    settings = backend.config.docker
    program = "def f(x):\n    return x + 1\nprint(f(1))\n"
    started = time.perf_counter()
    for _ in range(runs):
        client.containers.run(backend.image_id, entrypoint=["python3", "-S", "-c", program], network_mode="none",
                              read_only=True, mem_limit=f"{settings.memory_mb}m", cap_drop=["ALL"],
                              user=f"{settings.uid}:{settings.uid}", remove=True)
    return runs / (time.perf_counter() - started)


def run_bench(backend: WorkerPool, executions: int = 4000, baseline_runs: int | None = None) -> dict:
    if backend.backend == "docker":
        rate, failed = pool_rate(backend, executions)
        runs = baseline_runs or 8
        baseline, base_rate = "docker run per execution", docker_run_rate(backend, runs)
    else:
        runs = baseline_runs or 2000
        baseline = "raw fork+pipe+setrlimit loop (serial, no isolation; rounds alternate with the pool's)"
        rate, failed, base_rate = interleaved_rates(backend, executions, runs)
    info = backend.info()
    return {
        "backend": backend.backend,
        "executions_per_s": round(rate, 1),
        "baseline": baseline,
        "baseline_executions_per_s": round(base_rate, 1),
        "ratio": round(rate / base_rate, 3),
        "executions": executions,
        "unexpected_outcomes": failed,
        "workers": backend.workers_per_seed * len(backend.config.hash_seeds),
        "slots_per_worker": info.get("slots"),
        "cpus": os.cpu_count(),
        "isolation": {k: info.get(k) for k in ("filesystem", "network", "seccomp", "per_slot_uids", "uid")},
    }
