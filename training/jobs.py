"""Training jobs are reaped like runs: a job's row says where it lives (host, pid) and beats while it trains, so one
whose process was killed is found dead and marked ``crashed``, and the unfinished adapter folder it left removed.

The process-liveness primitives live here, below ``tasks/liveness.py`` (which reaps runs with the same ones and
re-exports them), because ``training`` may not import ``tasks``."""

from __future__ import annotations

import os
import shutil
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sinq.warehouse import jobs as queries
from sinq.warehouse.store import Warehouse, WarehouseBusy

STALE_AFTER_S = 6 * 3600.0
"""A running run or job whose heartbeat is older than this is dead wherever it ran (its host may not be this one)."""
HEARTBEAT_EVERY_S = 30.0
JOB_CRASHED = ("crashed: its process is gone (killed or lost) — found by a later training command, `sinq db info` or "
               "`sinq models list`; its unfinished adapter folder was removed")


def identity() -> dict:
    """The columns that let a later process tell whether this run or job is still alive."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat_at": datetime.now(UTC)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def partial_path(output: Path) -> Path:
    """Where a job writes its adapter until it is complete: a hidden sibling of ``output``, renamed into place (one
    rename on one filesystem) only once everything is saved, so a folder at ``output`` is always whole."""
    return output.parent / f".{output.name}.partial"


def beat_job(warehouse: Warehouse, job_id: str) -> None:
    """One short write: the training job is alive. A busy database skips a beat (the bound is hours)."""
    try:
        queries.beat_job(warehouse, job_id, datetime.now(UTC))
    except WarehouseBusy:
        return


def reap_dead_jobs(warehouse: Warehouse) -> list[dict]:
    """Mark ``crashed`` every ``running`` training job that is dead (as for runs: on this host with its pid gone,
    or silent past ``STALE_AFTER_S`` on any host) and remove what it left on disk: its partial adapter folder, and
    a folder at its final path that no adapter row registers (killed between the rename and the registration).
    Returns the jobs marked (job_id, and run_id: the flow run it belonged to, if any)."""
    here = socket.gethostname()
    running = queries.running_jobs(warehouse, datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S))
    dead = [r for r in running if r["silent"] or (r["host"] == here and r["pid"] is not None
                                                  and not alive(int(r["pid"])))]
    if not dead:
        return []
    registered = queries.mark_jobs_crashed(warehouse, [d["job_id"] for d in dead], JOB_CRASHED, datetime.now(UTC))
    for job in dead:
        if job["output_path"]:
            output = Path(job["output_path"])
            shutil.rmtree(partial_path(output), ignore_errors=True)
            if job["job_id"] not in registered:
                shutil.rmtree(output, ignore_errors=True)
    return [{"job_id": d["job_id"], "run_id": d["run_id"]} for d in dead]
