"""The nightly generation flow: source and validate problems → generate and settle samples → evaluator answers and
difficulty → an audit of a sample (re-verified from scratch; what fails leaves verified_pairs and so the snapshot) →
summary, artifacts (with the pair viewer) and a Parquet snapshot. Batches of problems are the unit of work;
everything lands in the warehouse as it is made, so a killed run resumes where it stopped when run again."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from sinq import code_version
from sinq.flows.artifacts import publish, publish_pair_viewer, slug
from sinq.flows.passes import pass_for
from sinq.flows.plays import Plays, covered, efficiency
from sinq.game.errors import SinqError
from sinq.sandbox.shared import close_shared_pools
from sinq.settings import Settings, load_settings
from sinq.tasks import cpu, liveness, nightly, stages
from sinq.tasks.passes import pass_summary
from sinq.warehouse.export import viewer_pairs


def _run_name() -> str:
    source = (flow_run.parameters.get("settings") or {}).get("run", {}).get("source", "humaneval")
    return f"nightly-{slug(source)}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def run_tags(settings: Settings) -> list[str]:
    agents = settings.agents
    return ["sinq", "nightly", f"source:{settings.run.source}", f"round:{settings.run.round}",
            f"generator:{agents.generator.kind}", f"evaluator:{agents.evaluator.kind}",
            f"sandbox:{settings.sandbox.backend}", f"config:{settings.config_hash()}"] + (
        [f"pass:{settings.run.pass_id}"] if settings.run.pass_id else [])


def _label_run(settings: Settings) -> dict[str, int]:
    """Tags (source, agents, round, config hash) on the run itself, however it was started (CLI or deployment);
    the fleet-wide concurrency limits exist before any task asks for a slot, and slots no live run holds (leaked by
    a restarted server or a lost client) are released. Returns what was released."""
    run_id = flow_run.id
    with get_client(sync_client=True) as client:
        if run_id:
            current = client.read_flow_run(uuid.UUID(run_id)).tags or []
            client.update_flow_run(uuid.UUID(run_id), tags=sorted(set(current) | set(run_tags(settings))))
        client.upsert_global_concurrency_limit_by_name(nightly.SANDBOX_LIMIT, settings.run.sandbox_slots)
        client.upsert_global_concurrency_limit_by_name(nightly.LLM_LIMIT, settings.run.llm_slots)
    return nightly.release_leaked_slots(run_id)


API_GONE = "Prefect API {url} went away during the run; stored work is intact, rerun to resume"


class PrefectGone(SinqError, RuntimeError):
    """The control plane went away mid-run: what was stored stays, a rerun resumes (exit 5, as Prefect down)."""

    exit_code = 5


def _api_gone(exc: BaseException) -> bool:
    """Whether the control plane, not the work, broke: a transport error anywhere in the cause chain."""
    import httpx

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (httpx.TransportError, PrefectGone)) or type(exc).__name__ == "PrefectUnavailable":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _drop_queued_events() -> int:
    """Prefect's event and log workers drain at interpreter exit with no deadline, each item retrying a dead
    API: minutes after the run already ended. Once the API is known gone their queued items can only fail, so they
    are dropped. Best effort over Prefect internals; returns how many were dropped."""
    import queue

    dropped = 0
    try:
        from prefect._internal.concurrency.services import _QueueServiceBase

        for service in list(_QueueServiceBase._instances.values()):
            if type(service).__name__ not in ("EventsWorker", "APILogWorker"):
                continue  # never another service's items: their callers wait on them (slot acquisition)
            while True:
                try:
                    item = service._queue.get_nowait()
                except queue.Empty:
                    break
                service._queue.task_done()
                if item is None:  # the stop sentinel stays
                    service._queue.put_nowait(None)
                    break
                dropped += 1
    except Exception:  # another Prefect layout: the exit is only slower
        return dropped
    return dropped


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or "(ephemeral)"


ProgressHook = Callable[[str, int, int], None]
progress_hooks: list[ProgressHook] = []
"""Called in the flow's process as batches finish (stage, done, total): the CLI's progress bars."""


def _report(stage: str, done: int, total: int) -> None:
    for hook in progress_hooks:
        hook(stage, done, total)


def task_runner(settings: Settings):
    """Threads in this process by default; Dask (a LocalCluster, or a scheduler address for many machines)
    spreads the sandbox batches over processes and hosts."""
    if settings.run.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.run.dask_address:
            return DaskTaskRunner(address=settings.run.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": settings.run.dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=3)


def for_settings(settings: Settings):
    """The flow with the task runner the settings ask for."""
    return nightly_generation.with_options(task_runner=task_runner(settings))


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


@flow(name="nightly-generation", flow_run_name=_run_name, persist_result=False, log_prints=False)
def nightly_generation(settings: dict | None = None) -> dict:
    """One night of the game on the configured source and agents (embedded defaults when nothing is configured)."""
    cfg = Settings.model_validate(settings) if settings is not None else load_settings()
    cfg.run.pass_id = pass_for(cfg.run, flow_run.scheduled_start_time)  # every stage keys its requests by it
    data = cfg.model_dump(mode="json")
    logger = get_run_logger()
    run_id = flow_run.id or str(uuid.uuid4())
    nightly.ABANDONED.clear()
    warehouse = stages.warehouse_for(cfg)
    stale = [d["run_id"] for d in liveness.reap_stale_runs(warehouse, exclude=run_id)]
    if stale:
        crashed = liveness.crash_in_prefect(stale)
        logger.warning("marked %d dead run(s) crashed (%d in Prefect too): %s", len(stale), len(crashed), stale)
    released = _label_run(cfg)
    if released:
        logger.warning("released concurrency slots no live run held (a restarted server or a lost client): %s",
                       released)
    warehouse.store({"runs": [{
        "run_id": run_id, "kind": "nightly", "status": "running", "round": cfg.run.round, "pass_id": cfg.run.pass_id,
        "config": cfg.model_dump_json(), "config_hash": cfg.config_hash(), "code_version": code_version(),
        "tags": json.dumps(run_tags(cfg)),
        "started_at": datetime.now(UTC), **liveness.run_identity()}]})
    started, started_at = time.perf_counter(), time.time()
    cpu_before = cpu.tree_cpu_s()
    timings: dict[str, float] = {}
    beat = time.monotonic()
    try:
        source = nightly.source_problems(data, run_id)
        timings["source"] = source.pop("seconds")
        ids = source.pop("problem_ids")
        logger.info("source %s: %d loaded, %d usable (%d validated now), rejected %s", cfg.run.source,
                    source["loaded"], source["usable"], source["validated_now"], source["rejected"])
        batches = _chunks(ids, cfg.run.batch_size)
        progress = create_progress_artifact(0.0, key="nightly-progress",
                                            description="generate + evaluate batches done")
        plays = Plays(cfg, run_id, cpu_before)
        plays.spans.append(source.pop("span"))
        plays.charge(source.pop("sandbox"))
        for i, batch in enumerate(batches):
            plays.plan(nightly.generate, "generate", batch, i)
        failures = []
        work = {"generate": 0.0, "evaluate": 0.0}
        finished = {"generate": 0, "evaluate": 0}
        _report("generate", 0, len(batches))
        _report("evaluate", 0, len(batches))
        for (stage, index), future in plays:
            finished[stage] += 1
            _report(stage, finished[stage], len(batches))
            if time.monotonic() - beat > liveness.HEARTBEAT_EVERY_S:
                liveness.heartbeat(warehouse, run_id)
                beat = time.monotonic()
            try:
                counts = plays.store(future)
                if stage == "generate":
                    plays.plan(nightly.evaluate, "evaluate", batches[index], index)
            except Exception as exc:
                if _api_gone(exc):
                    raise
                failures.append(f"{stage}-{index}: {type(exc).__name__}: {exc}")
                logger.error("%s batch %d failed: %s", stage, index, exc)
                if stage == "generate":
                    failures.append(f"evaluate-{index}: skipped because generate-{index} failed")
                    logger.error("evaluate batch %d skipped: its generate batch failed", index)
                    finished["evaluate"] += 1
                    _report("evaluate", finished["evaluate"], len(batches))
            else:
                work[stage] += counts.pop("seconds")
                logger.info("%s batch: %s", stage, counts)
            done = finished["generate"] + finished["evaluate"]
            update_progress_artifact(progress, 100.0 * done / (2 * len(batches)) if batches else 100.0)
        work["warehouse"] = plays.warehouse_s
        if not batches:
            update_progress_artifact(progress, 100.0)
        timings.update(work)
        audit = None
        if cfg.run.audit_sample:
            try:
                audit = nightly.audit(data, run_id)
            except Exception as exc:
                failures.append(f"audit: {type(exc).__name__}: {exc}")
                logger.error("audit failed: %s", exc)
            else:
                timings["audit"] = audit.pop("seconds")
                plays.spans.append(audit.pop("span"))
                plays.charge(audit.pop("sandbox"))
                logger.info("audit: %d of %d sampled pairs reproduced (%d answers checked); not reproduced: %s",
                            audit["reproduced"], audit["checked"], audit["answers"]["checked"], audit["by_reason"])
        summary = nightly.summarize(data, run_id)
        timings["summary"] = summary.pop("seconds")
        night = pass_summary(cfg, warehouse, run_id, summary["generator"])
        summary.update(pass_id=cfg.run.pass_id, exhausted_problems=(night or {}).get("exhausted_problems", 0),
                       **{"pass": night})
        plays.spans.append(summary.pop("span"))
        exported = nightly.export_snapshot(data, run_id)
        timings["export"], snapshot = exported["seconds"], exported["snapshot"]
        plays.spans.append(exported["span"])
        timings["wall"] = time.perf_counter() - started
        summary.update(problems=source["usable"], problems_loaded=source["loaded"], snapshot=snapshot,
                       failed_batches=failures, audit=audit, **plays.figures(summary["verified_pairs"]))
        stage_seconds = {k: v for k, v in timings.items() if k != "wall"}
        timings.update(efficiency(summary))
        timings["busy"] = covered(plays.spans, started_at, started_at + timings["wall"])
        summary["timings"] = {k: round(v, 4) for k, v in timings.items()}
        publish(summary, source, stage_seconds)
        publish_pair_viewer(run_id, viewer_pairs(warehouse, run_id))
        logger.info("run %s: %d samples, %d verified pairs, %d labelled; snapshot %s", run_id, summary["samples"],
                    summary["verified_pairs"], summary["evaluated_pairs"], snapshot and snapshot["path"])
        if failures:
            raise RuntimeError(f"{len(failures)} batch(es) failed (the others are stored): {failures[:3]}")
        warehouse.finish_run(run_id, "completed", summary["timings"])
        return summary
    except BaseException as exc:
        if _api_gone(exc):
            nightly.ABANDONED.set()
            message = API_GONE.format(url=_api_url())
            warehouse.finish_run(run_id, "failed", {k: round(v, 3) for k, v in timings.items()}, message)
            logger.error(message)
            _drop_queued_events()
            try:  # and again at exit, before Prefect's own drains (threading runs these last-registered first)
                threading._register_atexit(_drop_queued_events)
            except Exception:
                pass
            raise PrefectGone(message, hint="start the server again (`sinq server start`) and rerun") \
                from None
        warehouse.finish_run(run_id, "failed", {k: round(v, 3) for k, v in timings.items()}, str(exc)[:2000])
        raise
    finally:
        close_shared_pools()
