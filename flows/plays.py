"""The nightly's batches in flight. Each batch is planned here (warehouse reads), played wherever the task runner
puts it (a thread, a Dask worker on another host: no warehouse there) and stored here as it completes, so the flow's
process is the warehouse's single writer and a worker needs nothing but the scheduler and the sandbox. What the
batches report is summed on the way: the baseline's search counts, sandbox time per purpose, remote CPU."""

from __future__ import annotations

import queue
import time
from collections import Counter
from collections.abc import Iterator

from sinq.sandbox import tally
from sinq.settings import Settings
from sinq.tasks import cpu, stages


class _Played:
    """A batch with nothing to play (all done before): completed at once, without a task run."""

    def __init__(self, played: stages.Played) -> None:
        self._played = played

    def result(self) -> stages.Played:
        return self._played


class Plays:
    def __init__(self, settings: Settings, run_id: str, cpu_before: float) -> None:
        self.settings, self.run_id, self.cpu_before = settings, run_id, cpu_before
        self._data = settings.model_dump(mode="json")
        self._done: queue.Queue = queue.Queue()
        self._pending = 0
        self.search: Counter = Counter()
        self.disguise: Counter = Counter()
        """Issue 27: verified variants rewritten like the equivalent half, or kept plain (and why)."""
        self.blamed: Counter = Counter()
        self.tried_by: Counter = Counter()
        """Per transformation: equivalent candidates dropped as unsound that it took part in, and all it was in."""
        self.sandbox: dict = {"seconds": {}, "executions": {}}
        self.remote_cpu_s = 0.0
        self._remote: set[tuple[str, int]] = set()
        self.warehouse_s = 0.0
        """Seconds this process spent planning (reads) and storing (writes) the batches."""
        self.spans: list[tuple[float, float]] = []
        """(start, end) epoch seconds of every piece of stage work: task bodies wherever they ran, and this
        process's warehouse reads and writes. Epoch, not a monotonic clock, so spans from other hosts line up."""

    def plan(self, task, stage: str, problem_ids: list[str], index: int) -> None:
        """Plan a batch of ``stage`` (warehouse reads, here) and submit it to ``task``."""
        started = time.time()
        planner = stages.plan_generate if stage == "generate" else stages.plan_evaluate
        work = planner(self.settings, self.run_id, problem_ids)
        self._warehouse_span(started)
        self.submit(task, work, index)

    def _warehouse_span(self, started: float) -> None:
        ended = time.time()
        self.warehouse_s += ended - started
        self.spans.append((started, ended))

    def submit(self, task, work: stages.Work, index: int) -> None:
        """Send a planned batch to the task runner (a batch with nothing to do completes here at once)."""
        self._pending += 1
        tag = (work.stage, index)
        if work.empty():
            play = stages.play_generate if work.stage == "generate" else stages.play_evaluate
            self._done.put((tag, _Played(play(self.settings, work))))
            return
        future = task.submit(self._data, work, index)
        future.add_done_callback(lambda f: self._done.put((tag, f)))

    def __iter__(self) -> Iterator[tuple[tuple[str, int], object]]:
        """(stage, index), future: in completion order, while batches are in flight (submitting more is fine)."""
        while self._pending:
            item = self._done.get()
            self._pending -= 1
            yield item

    def store(self, future) -> dict:
        """The batch's result stored in one write; its counts (the task's seconds included)."""
        played: stages.Played = future.result()
        started = time.time()
        counts = stages.store_played(self.settings, played)
        self._warehouse_span(started)
        if "span" in counts:
            self.spans.append(tuple(counts.pop("span")))
        counts.setdefault("seconds", 0.0)
        self.search.update(counts.get("search") or {})
        self.disguise.update(counts.get("disguise") or {})
        equivalence = counts.get("equivalence") or {}
        self.blamed.update(equivalence.get("blamed") or {})
        self.tried_by.update(equivalence.get("tried_by") or {})
        self.charge(played.sandbox)
        where = played.cpu
        if where and not _local(where):
            self.remote_cpu_s += where.get("cpu_s", 0.0)
            self._remote.add((where["host"], where["pid"]))
        return counts

    def charge(self, sandbox: dict) -> None:
        """Sandbox time spent in this process outside the batches (validation, audit)."""
        self.sandbox = tally.add(self.sandbox, sandbox)

    def figures(self, verified_pairs: int) -> dict:
        """The run's efficiency figures: CPU seconds (this host's process tree, plus what batches played on other
        hosts reported), verified pairs per CPU-minute, search counts, sandbox seconds and their shares."""
        cpu_s = cpu.tree_cpu_s() - self.cpu_before + self.remote_cpu_s
        return {
            "cpu_s": round(cpu_s, 3), "remote_workers": len(self._remote),
            "pairs_per_cpu_minute": round(verified_pairs / (cpu_s / 60), 3) if cpu_s > 0 else None,
            "search": dict(sorted(self.search.items())),
            "disguise": dict(sorted(self.disguise.items())),
            "equivalence_drop_share": {name: round(self.blamed[name] / n, 4)
                                       for name, n in sorted(self.tried_by.items()) if n},
            "sandbox": {"seconds": {k: round(v, 3) for k, v in sorted(self.sandbox["seconds"].items())},
                        "executions": dict(sorted(self.sandbox["executions"].items())),
                        "shares": tally.shares(self.sandbox)}}


def covered(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] inside at least one span: the time some stage was working. Unlike the sum of the
    spans, it does not count twice the time concurrent batches overlap, so wall less this is time nothing ran."""
    total, reach = 0.0, start
    for lo, hi in sorted((max(lo, start), min(hi, end)) for lo, hi in spans):
        if hi > reach:
            total += hi - max(lo, reach)
            reach = hi
    return total


def _local(where: dict) -> bool:
    """Whether a batch ran in this process tree (its CPU is already in the tree's figure)."""
    here = cpu.where()
    if where.get("host") != here["host"]:
        return False
    return where.get("pid") == here["pid"] or where.get("pid") in cpu.descendants(here["pid"])


def efficiency(summary: dict) -> dict[str, float]:
    """The figures that go into ``runs.timings`` beside the stage seconds (flat numbers)."""
    out: dict[str, float] = {"cpu_s": summary["cpu_s"]}
    if summary["pairs_per_cpu_minute"] is not None:
        out["pairs_per_cpu_minute"] = summary["pairs_per_cpu_minute"]
    sandbox = summary["sandbox"]
    out["sandbox_s"] = round(sum(sandbox["seconds"].values()), 3)
    out.update({f"sandbox_share_{purpose}": share for purpose, share in sandbox["shares"].items()})
    return out
