"""A pool of warm sandbox workers, grouped by PYTHONHASHSEED, fed batches; backends only say how to start one."""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import select
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import ValidationError

from sinq.sandbox import tally
from sinq.sandbox.config import Limits, SandboxConfig
from sinq.sandbox.outcome import Outcome

log = logging.getLogger(__name__)


class WorkerDied(RuntimeError):
    """The worker process or container went away mid-batch (infrastructure, not a program outcome)."""


@dataclass
class Job:
    """One execution: run ``program`` and call ``entry_point`` with the literal keyword dict ``input``
    (kind ``call``), or run ``program`` followed by ``tests`` (kind ``script``, a problem's own tests)."""

    program: str
    entry_point: str = ""
    input: str = "{}"
    kind: Literal["call", "script"] = "call"
    tests: str | None = None
    hash_seed: int | None = None
    limits: Limits | None = None
    tag: object = field(default=None, compare=False)


def source_key(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


class WorkerHandle(Protocol):
    info: dict

    def request(self, message: dict, timeout_s: float) -> dict: ...

    def close(self) -> None: ...


def encode_frame(message: dict) -> bytes:
    data = json.dumps(message, ensure_ascii=True).encode()
    return struct.pack(">I", len(data)) + data


class FrameReader:
    """Reassembles length-prefixed frames from arbitrary chunks."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk

    def next(self) -> dict | None:
        if len(self.buffer) < 4:
            return None
        size = struct.unpack(">I", self.buffer[:4])[0]
        if len(self.buffer) < 4 + size:
            return None
        data = bytes(self.buffer[4 : 4 + size])
        del self.buffer[: 4 + size]
        return json.loads(data)


def await_frame(reader: FrameReader, waitable: object, pull: Callable[[], bool], timeout_s: float,
                on_eof: Callable[[], str]) -> dict:
    """Wait for the next whole frame; ``pull`` moves what is readable into ``reader`` and is False at end of stream."""
    deadline = time.monotonic() + timeout_s
    while True:
        frame = reader.next()
        if frame is not None:
            return frame
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkerDied(f"worker gave no answer within {timeout_s:.0f} s")
        ready, _, _ = select.select([waitable], [], [], remaining)
        if ready and not pull():
            raise WorkerDied(on_eof())


class WorkerPool:
    """Runs jobs on warm workers: one group of workers per hash seed, chunks pulled from a queue per seed.

    A worker that dies is replaced and its chunk re-run once; if the chunk kills a worker again, its jobs run
    one by one so that a single job that takes its worker down gets ``crashed`` and no other job is lost.
    """

    def __init__(
        self,
        config: SandboxConfig,
        start_worker: Callable[[int, int], WorkerHandle],
        backend: str,
        workers_per_seed: int | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self._start_worker = start_worker
        self.workers_per_seed = workers_per_seed or config.resolved_workers()
        self._workers: dict[tuple[int, int], WorkerHandle] = {}
        self._lock = threading.Lock()
        self.replaced = 0

    # ---- worker lifecycle
    def worker(self, seed: int, index: int) -> WorkerHandle:
        key = (seed, index)
        handle = self._workers.get(key)
        if handle is None:
            handle = self._start_worker(seed, index)
            self._workers[key] = handle
        return handle

    def replace(self, seed: int, index: int) -> WorkerHandle:
        old = self._workers.pop((seed, index), None)
        if old is not None:
            try:
                old.close()
            except Exception:
                log.debug("closing a dead worker failed", exc_info=True)
        self.replaced += 1
        return self.worker(seed, index)

    def start(self, seeds: tuple[int, ...] | None = None) -> None:
        """Start every worker now (in parallel) instead of on first use."""
        keys = [(s, i) for s in (seeds or self.config.hash_seeds) for i in range(self.workers_per_seed)]
        with ThreadPoolExecutor(max_workers=len(keys)) as pool:
            list(pool.map(lambda k: self.worker(*k), keys))

    def info(self) -> dict:
        handle = self.worker(self.config.hash_seeds[0], 0)
        return dict(handle.info)

    def close(self) -> None:
        for handle in list(self._workers.values()):
            try:
                handle.close()
            except Exception:
                log.debug("closing worker failed", exc_info=True)
        self._workers.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- running
    def run(self, jobs: list[Job]) -> list[Outcome]:
        """Outcomes in job order; the batch's wall time is charged to the caller's purpose (sandbox/tally.py)."""
        if not jobs:
            return []
        started = time.perf_counter()
        try:
            return self._run(jobs)
        finally:
            tally.charge(time.perf_counter() - started, len(jobs))

    def _run(self, jobs: list[Job]) -> list[Outcome]:
        results: list[Outcome | None] = [None] * len(jobs)
        by_seed: dict[int, list[int]] = {}
        for position, job in enumerate(jobs):
            seed = job.hash_seed if job.hash_seed is not None else self.config.hash_seeds[0]
            by_seed.setdefault(seed, []).append(position)
        tasks: list[tuple[int, int, queue.Queue]] = []
        for seed, positions in by_seed.items():
            chunk = max(1, min(self.config.chunk_size, -(-len(positions) // self.workers_per_seed)))
            chunks: queue.Queue = queue.Queue()
            for start in range(0, len(positions), chunk):
                chunks.put(positions[start : start + chunk])
            tasks += [(seed, index, chunks) for index in range(min(self.workers_per_seed, chunks.qsize()))]

        def drain(seed: int, index: int, chunks: queue.Queue) -> None:
            while True:
                try:
                    positions = chunks.get_nowait()
                except queue.Empty:
                    return
                outcomes = self._run_chunk(seed, index, [jobs[p] for p in positions])
                for position, outcome in zip(positions, outcomes, strict=True):
                    results[position] = outcome

        if len(tasks) == 1:
            drain(*tasks[0])
        else:
            with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
                for future in [pool.submit(drain, *task) for task in tasks]:
                    future.result()
        return [r if r is not None else Outcome(kind="crashed", message="lost") for r in results]

    def _run_chunk(self, seed: int, index: int, jobs: list[Job]) -> list[Outcome]:
        try:
            return self._send(self.worker(seed, index), seed, jobs)
        except WorkerDied as first:
            log.warning("sandbox worker (seed %s, #%s) died: %s; replacing it and re-running %d jobs",
                        seed, index, first, len(jobs))
            try:
                return self._send(self.replace(seed, index), seed, jobs)
            except WorkerDied:
                self.replace(seed, index)
                if len(jobs) == 1:
                    return [self._lost(seed, str(first))]
        outcomes = []
        for job in jobs:
            try:
                outcomes += self._send(self.worker(seed, index), seed, [job])
            except WorkerDied as exc:
                log.warning("a single job took its sandbox worker down: %s", exc)
                outcomes.append(self._lost(seed, str(exc)))
                self.replace(seed, index)
        return outcomes

    lost = 0
    """Executions this pool could not run (a worker lost even after replacement), ever: a caller compares it before
    and after a batch to tell an infrastructure failure from the programs' outcomes (``tasks.stages``)."""

    def _lost(self, seed: int, why: str) -> Outcome:
        self.lost += 1
        return Outcome(kind="crashed", reason="sandbox_worker_died", message=why[:500], hash_seed=seed,
                       backend=self.backend)

    def _send(self, handle: WorkerHandle, seed: int, jobs: list[Job]) -> list[Outcome]:
        programs: dict[str, str] = {}
        wire = []
        budget = 0.0
        for job in jobs:
            limits = job.limits or self.config.limits
            key = source_key(job.program)
            programs[key] = job.program
            item = limits.wire()
            item.update(kind=job.kind, program=key, entry_point=job.entry_point, input=job.input,
                        compare=self.config.compare)
            if job.tests is not None:
                tests_key = source_key(job.tests)
                programs[tests_key] = job.tests
                item["tests"] = tests_key
            wire.append(item)
            budget += limits.timeout_s + 0.5
        slots = max(1, int(handle.info.get("slots", 1)))
        timeout = 30.0 + 2.0 * budget / slots
        reply = handle.request({"op": "batch", "programs": programs, "jobs": wire}, timeout)
        raw = reply.get("results")
        if reply.get("op") != "results" or not isinstance(raw, list) or len(raw) != len(jobs):
            raise WorkerDied(f"malformed reply from worker: {str(reply)[:200]}")
        runtime = handle.info.get("runtime") or f"python {handle.info.get('python', '?')}"
        return [self._outcome(item, seed, runtime) for item in raw]

    def _outcome(self, item: object, seed: int, runtime: str) -> Outcome:
        """The worker's report, validated: what a child wrote is hostile data too."""
        stamp = {"hash_seed": seed, "backend": self.backend, "runtime": runtime}
        try:
            if not isinstance(item, dict):
                raise TypeError(type(item).__name__)
            return Outcome.model_validate({**item, **stamp})
        except (ValidationError, TypeError) as exc:
            return Outcome(kind="crashed", reason="malformed_outcome", message=str(exc)[:300], **stamp)
