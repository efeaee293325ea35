"""A run says where it lives and that it is alive, so that a SIGKILLed one is found dead (by the next run or
`sinq db info`) and marked ``crashed`` in the warehouse and in Prefect. Training jobs are reaped alike
(``reap_dead_jobs``, from training/jobs.py, which holds the primitives both use)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from sinq.training.jobs import HEARTBEAT_EVERY_S, STALE_AFTER_S, alive, identity, reap_dead_jobs
from sinq.warehouse import queries
from sinq.warehouse.store import Warehouse, WarehouseBusy

CRASHED = "crashed: its process is gone (killed or lost) — found by a later run or `sinq db info`"


def run_identity() -> dict:
    """The ``runs`` columns that let a later process tell whether this run is still alive."""
    return identity()


def heartbeat(warehouse: Warehouse, run_id: str) -> None:
    """One short write: the run is alive (the stale-run check trusts a recent heartbeat from another host). A busy
    database skips a beat rather than fail the run: the bound is hours, the beats are seconds apart."""
    try:
        queries.beat(warehouse, run_id, datetime.now(UTC))
    except WarehouseBusy:
        return


def reap_stale_runs(warehouse: Warehouse, exclude: str | None = None) -> list[dict]:
    """Mark ``crashed`` every ``running`` run that is dead: on this host with its pid gone, or silent for longer than
    ``STALE_AFTER_S`` (any host). Only ``runs.status``/``finished_at``/``error`` change; every row the run stored
    stays. Returns the runs marked (run_id, kind)."""
    here = socket.gethostname()
    running = queries.running_runs(warehouse, datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S))
    dead = [{"run_id": r["run_id"], "kind": r["kind"]} for r in running
            if r["run_id"] != exclude and (r["silent"] or (r["host"] == here and r["pid"] is not None
                                                           and not alive(int(r["pid"]))))]
    if dead:
        queries.mark_crashed(warehouse, [d["run_id"] for d in dead], CRASHED, datetime.now(UTC))
    return dead


def crash_in_prefect(run_ids: list[str], message: str = CRASHED) -> list[str]:
    """Set the Prefect flow runs of these (dead) runs to Crashed where they are not final yet; best effort (the API
    may be down or the run unknown to it). Returns those it set."""
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    marked = []
    try:
        with get_client(sync_client=True) as client:
            for run_id in run_ids:
                try:
                    flow_run_id = uuid.UUID(run_id)
                except ValueError:
                    continue  # a `sinq verify` run: not a Prefect flow run
                try:
                    state = client.read_flow_run(flow_run_id).state
                    if state is None or not state.is_final():
                        client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
                        marked.append(run_id)
                except Exception:  # unknown to this server: nothing to mark there
                    continue
    except Exception:
        return marked
    return marked


__all__ = ["CRASHED", "HEARTBEAT_EVERY_S", "STALE_AFTER_S", "crash_in_prefect", "heartbeat", "reap_dead_jobs",
           "reap_stale_runs", "run_identity"]
