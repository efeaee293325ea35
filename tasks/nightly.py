"""Prefect tasks of the nightly run: thin, batch-sized wrappers over tasks/stages.py. Parameters are plain JSON
(settings, run id, problem ids); results are small dicts of counts. Retries (with jitter) only for infrastructure
failures, never for data outcomes; Prefect's per-run result cache is off: resumption uses our content hashes."""

from __future__ import annotations

import time
from contextlib import ExitStack

import duckdb
import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from sandbox.local import SandboxUnavailable
from sinq.settings import Settings
from tasks import audit as audits
from tasks import stages
from warehouse.store import WarehouseBusy

SANDBOX_LIMIT = "sinq-sandbox"
LLM_LIMIT = "sinq-llm"
SLOT_LEASE_S = 60.0
"""Slots are leased and renewed while held: a killed run's slots come back within a minute."""
SLOT_WAIT_S = 1800.0
"""Past this wait for a slot the task fails as infrastructure (TimeoutError) and is retried, never hangs."""
INFRASTRUCTURE = (SandboxUnavailable, WarehouseBusy, duckdb.IOException, httpx.TransportError, ConnectionError,
                  TimeoutError)


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


def _slots(settings: Settings, llm: bool) -> ExitStack:
    """Fleet-wide guards: the sandbox limit always, the LLM limit when an LLM agent plays this stage."""
    stack = ExitStack()
    for name in (SANDBOX_LIMIT, LLM_LIMIT) if llm else (SANDBOX_LIMIT,):
        stack.enter_context(concurrency(name, occupy=1, strict=False, lease_duration=SLOT_LEASE_S,
                                        timeout_seconds=SLOT_WAIT_S))
    return stack


def _timed(function, *args) -> dict:
    """The stage's own seconds: its body less any wait for this process's sandbox pool."""
    stages.take_lock_wait()
    started = time.perf_counter()
    result = function(*args)
    return {**result, "seconds": time.perf_counter() - started - stages.take_lock_wait()}


@task(name="source-problems", **OPTIONS)
def source_problems(settings: dict, run_id: str) -> dict:
    cfg = Settings.model_validate(settings)
    with _slots(cfg, False):
        return _timed(stages.source_problems, cfg, run_id)


@task(name="generate", task_run_name="generate-{index}", **OPTIONS)
def generate(settings: dict, run_id: str, problem_ids: list[str], index: int) -> dict:
    cfg = Settings.model_validate(settings)
    with _slots(cfg, cfg.agents.generator.kind == "llm"):
        return _timed(stages.generate_batch, cfg, run_id, problem_ids)


@task(name="evaluate", task_run_name="evaluate-{index}", **OPTIONS)
def evaluate(settings: dict, run_id: str, problem_ids: list[str], index: int) -> dict:
    cfg = Settings.model_validate(settings)
    with _slots(cfg, cfg.agents.evaluator.kind == "llm"):
        return _timed(stages.evaluate_batch, cfg, run_id, problem_ids)


@task(name="audit", **OPTIONS)
def audit(settings: dict, run_id: str) -> dict:
    """A seeded sample of this run's pairs settled again in fresh sandbox processes under other hash seeds (its own
    pool, closed afterwards: never the per-process pool the batches share); what fails leaves verified_pairs."""
    cfg = Settings.model_validate(settings)
    with _slots(cfg, False):
        return _timed(audits.audit_run_sample, cfg, run_id)


@task(name="summarize", **OPTIONS)
def summarize(settings: dict, run_id: str) -> dict:
    return _timed(stages.run_summary, Settings.model_validate(settings), run_id)


@task(name="export-snapshot", **OPTIONS)
def export_snapshot(settings: dict, run_id: str) -> dict | None:
    return stages.export_snapshot(Settings.model_validate(settings), run_id)
