"""Prefect tasks of the nightly run: thin, batch-sized wrappers over tasks/stages.py. Parameters are plain JSON
(settings, run id, problem ids); results are small dicts of counts. Retries (with jitter) only for infrastructure
failures, never for data outcomes; Prefect's per-run result cache is off: resumption uses our content hashes."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import duckdb
import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency

from sinq.game.errors import SinqError
from sinq.sandbox import tally
from sinq.sandbox.errors import SandboxUnavailable
from sinq.sandbox.shared import take_lock_wait
from sinq.sandbox.tally import charged_to
from sinq.settings import Settings
from sinq.tasks import audit as audits
from sinq.tasks import cpu, stages
from sinq.warehouse.store import WarehouseBusy

SANDBOX_LIMIT = "sinq-sandbox"
LLM_LIMIT = "sinq-llm"
SLOT_LEASE_S = 60.0
"""Slots are leased and renewed while held: a killed run's slots come back within a minute."""
SLOT_NOTICE_S = 5.0
"""A slot not granted within this is said in the log (who holds what) before the long wait."""


class SlotTimeout(SinqError):
    """No fleet-wide slot came free within the bound: other runs hold them, or a lost server leaked them."""

    exit_code = 5
try:  # raised when the API cannot grant a slot (lost server, lost connection): the control plane
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
except ImportError:  # pragma: no cover - another Prefect layout
    ConcurrencySlotAcquisitionError = ConnectionError
INFRASTRUCTURE = (SandboxUnavailable, WarehouseBusy, duckdb.IOException, httpx.TransportError, ConnectionError,
                  TimeoutError, ConcurrencySlotAcquisitionError, SystemError)
"""What a retry can cure. ``SystemError`` is the interpreter's own failure (e.g. CPython gh-106905 in a library's
thread that does not take ``sinq.game.syntax.LOCK``), never a property of the data."""


def infrastructure_failure(task, task_run, state) -> bool:
    """Retry a task only when what broke was infrastructure (sandbox, database lock, network), not the data."""
    try:
        state.result()
    except INFRASTRUCTURE:
        return True
    except Exception:
        return False
    return False


OPTIONS = {"retries": 2, "retry_delay_seconds": [2, 10], "retry_jitter_factor": 0.5,
           "retry_condition_fn": infrastructure_failure, "cache_policy": NO_CACHE, "persist_result": False}


def _held(name: str) -> str:
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
        return f"{limit.active_slots}/{limit.limit} held"
    except Exception:
        return "holders unknown"


def _acquire(stack: ExitStack, name: str, wait_s: float) -> None:
    """Take one slot; a wait is said in the log (and so in the UI), bounded by ``[run] slot_wait_s``, then a clear
    failure (``SlotTimeout``, not retried: it already waited) instead of a silent hang. Asked in short attempts, so
    that a run which lost its API stops asking."""
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        _not_abandoned()
        attempt = max(0.1, min(SLOT_NOTICE_S, deadline - time.monotonic()))
        try:
            stack.enter_context(concurrency(name, occupy=1, strict=False, lease_duration=SLOT_LEASE_S,
                                            timeout_seconds=attempt))
            return
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise SlotTimeout(f"no {name!r} slot came free within {wait_s:.0f} s ({_held(name)})",
                                  hint="another run holds them: wait for it, or stop it; `sinq run` releases "
                                       "slots no live run holds") from None
        if not said:
            get_run_logger().warning("waiting up to %.0f s for a %r slot (%s; slots leaked by a lost server come "
                                     "back when the next run starts)", wait_s, name, _held(name))
            said = True


def _slots(settings: Settings, llm: bool) -> ExitStack:
    """Fleet-wide guards: the sandbox limit always, the LLM limit when an LLM agent plays this stage."""
    stack = ExitStack()
    try:
        for name in (SANDBOX_LIMIT, LLM_LIMIT) if llm else (SANDBOX_LIMIT,):
            _acquire(stack, name, settings.run.slot_wait_s)
    except BaseException:
        stack.close()
        raise
    return stack


def release_leaked_slots(own_flow_run: str | None) -> dict[str, int]:
    """Slots held while no other nightly run is live are leaked (a restarted server forgets its leases but keeps the
    counters; a lost client never releases): give them back at run start. Returns what was released, per limit."""
    import uuid

    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    released: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        live = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["nightly-generation"])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.RUNNING, StateType.CANCELLING]))), limit=50)
        own = uuid.UUID(own_flow_run) if own_flow_run else None
        if any(run.id != own for run in live):
            return released
        for name in (SANDBOX_LIMIT, LLM_LIMIT):
            try:
                limit = client.read_global_concurrency_limit_by_name(name)
            except Exception:
                continue
            if limit.active_slots:
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
                released[name] = limit.active_slots
    return released


ABANDONED = threading.Event()
"""Set by the flow when its Prefect API went away: batches not started yet end at once instead of each waiting out
its retries against a dead API (the run already failed; its stored work is intact)."""


class RunAbandoned(SinqError):
    """This batch did not start: its run lost the Prefect API (see the run's message)."""

    exit_code = 5


def _not_abandoned() -> None:
    if ABANDONED.is_set():
        raise RunAbandoned("not started: the run lost its Prefect API")


def _timed(function, *args) -> dict:
    """The stage's own seconds (its body less any wait for this process's sandbox pool) and its span."""
    take_lock_wait()
    span, started = time.time(), time.perf_counter()
    result = function(*args)
    return {**result, "seconds": time.perf_counter() - started - take_lock_wait(), "span": (span, time.time())}


@task(name="source-problems", **OPTIONS)
def source_problems(settings: dict, run_id: str) -> dict:
    _not_abandoned()
    cfg = Settings.model_validate(settings)
    before = tally.snapshot()
    with _slots(cfg, False), charged_to("validation"):
        return {**_timed(stages.source_problems, cfg, run_id), "sandbox": tally.since(before)}


def _play(function, settings: Settings, work: stages.Work) -> stages.Played:
    """Play a planned batch; its counts gain the stage's seconds, and it says where it ran and the CPU its
    process tree spent (the flow adds that for batches played on other hosts)."""
    before = cpu.tree_cpu_s()
    take_lock_wait()
    span, started = time.time(), time.perf_counter()
    played = function(settings, work)
    played.counts["seconds"] = time.perf_counter() - started - take_lock_wait()
    played.counts["span"] = (span, time.time())
    played.cpu = {**cpu.where(), "cpu_s": round(cpu.tree_cpu_s() - before, 3)}
    return played


@task(name="generate", task_run_name="generate-{index}", **OPTIONS)
def generate(settings: dict, work: stages.Work, index: int) -> stages.Played:
    """Runs wherever the task runner puts it (a thread, or a Dask worker on another host): no warehouse."""
    _not_abandoned()
    cfg = Settings.model_validate(settings)
    with _slots(cfg, work.agent.kind == "llm"):
        return _play(stages.play_generate, cfg, work)


@task(name="evaluate", task_run_name="evaluate-{index}", **OPTIONS)
def evaluate(settings: dict, work: stages.Work, index: int) -> stages.Played:
    _not_abandoned()
    cfg = Settings.model_validate(settings)
    with _slots(cfg, work.agent.kind == "llm"):
        return _play(stages.play_evaluate, cfg, work)


@task(name="audit", **OPTIONS)
def audit(settings: dict, run_id: str) -> dict:
    """A seeded sample of this run's pairs settled again in fresh sandbox processes under other hash seeds (its own
    pool, closed afterwards: never the per-process pool the batches share); what fails leaves verified_pairs."""
    _not_abandoned()
    cfg = Settings.model_validate(settings)
    before = tally.snapshot()
    with _slots(cfg, False), charged_to("audit"):
        return {**_timed(audits.audit_run_sample, cfg, run_id), "sandbox": tally.since(before)}


@task(name="summarize", **OPTIONS)
def summarize(settings: dict, run_id: str) -> dict:
    return _timed(stages.run_summary, Settings.model_validate(settings), run_id)


@task(name="export-snapshot", **OPTIONS)
def export_snapshot(settings: dict, run_id: str) -> dict:
    """The snapshot written (None when exports are off), with the seconds and span it took."""
    return _timed(lambda *a: {"snapshot": stages.export_snapshot(*a)}, Settings.model_validate(settings), run_id)
