"""CPU seconds of a process tree, read from /proc: a run's own process, the sandbox workers it started and the
programs they ran (reaped children count in their parent's cutime). The denominator of "verified pairs per
CPU-minute", measured rather than inferred from wall time and core counts."""

from __future__ import annotations

import os
import resource
import socket
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime + cutime + cstime in seconds) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICK


def descendants(pid: int) -> dict[int, float]:
    """Every live descendant of ``pid`` with its CPU seconds (its own and its reaped children's)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        children.setdefault(parent, []).append(child)
    found: dict[int, float] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        if child not in found:
            found[child] = stats[child][1]
            todo += children.get(child, [])
    return found


def tree_cpu_s() -> float:
    """This process's CPU (its threads, and children it reaped) plus that of its live descendants."""
    if not Path("/proc/self/stat").exists():
        own = resource.getrusage(resource.RUSAGE_SELF)
        return own.ru_utime + own.ru_stime
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + sum(descendants(os.getpid()).values())


def where() -> dict:
    """Which process this is (a batch's report names its host and pid, so the flow counts remote CPU once)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}
