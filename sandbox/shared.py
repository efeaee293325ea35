"""One started pool per process and sandbox configuration, shared by the batches of that process.

Workers are expensive to start, so batches share them; a lock serialises the batches of one process on a pool (the
pool already uses every core), and the time spent waiting for it is counted apart from work (the pipeline bench
separates the two). A batch whose executions the pool lost is an infrastructure failure before anything is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sinq.sandbox import open_backend
from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.errors import SandboxUnavailable
from sinq.sandbox.pool import WorkerPool

_pools: dict[str, tuple[WorkerPool, threading.Lock]] = {}
_pools_lock = threading.Lock()
_waits = threading.local()


def shared_pool(config: SandboxConfig) -> tuple[WorkerPool, threading.Lock]:
    """The started pool for ``config`` and the lock its batches take turns on."""
    key = config.model_dump_json()
    with _pools_lock:
        if key not in _pools:
            pool = open_backend(config)
            pool.start()
            _pools[key] = (pool, threading.Lock())
        return _pools[key]


def install_pool(config: SandboxConfig, pool: WorkerPool) -> None:
    """Use ``pool`` for ``config`` from now on (a test's pool of lost workers, or one started elsewhere)."""
    with _pools_lock:
        _pools[config.model_dump_json()] = (pool, threading.Lock())


@contextmanager
def holding(lock: threading.Lock) -> Iterator[None]:
    """Hold the pool's lock, counting the wait: waiting is not work."""
    started = time.perf_counter()
    with lock:
        _waits.seconds = getattr(_waits, "seconds", 0.0) + time.perf_counter() - started
        yield


def take_lock_wait() -> float:
    """Seconds this thread waited for pool locks since the last call."""
    seconds, _waits.seconds = getattr(_waits, "seconds", 0.0), 0.0
    return seconds


@contextmanager
def no_lost_executions(pool: WorkerPool, what: str) -> Iterator[None]:
    """Around a batch's sandbox work (under the pool's lock, so the batch is alone on it): an execution the pool
    lost, wherever it happened (the generator's input search, a verdict, the evaluator's checks), makes the batch an
    infrastructure failure before anything is stored, so a lost worker never becomes a sample, a verdict or an
    answer."""
    before = pool.lost
    yield
    if pool.lost > before:
        raise SandboxUnavailable(f"the sandbox lost {pool.lost - before} execution(s) of this {what} batch (its "
                                 "workers died even after replacement); nothing of this batch was stored")


def close_shared_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool, _ in pools:
        pool.close()
