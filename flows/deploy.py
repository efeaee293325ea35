"""Registers the deployments (the nightly one on the CPU pool: cron + IANA timezone from [run], concurrency limit 1,
runs never overlap; the weekly fine-tune, the on-demand gate and evaluate on the GPU pool) and the work pools they
need, from the same facts prefect.yaml states for people who use `prefect deploy`."""

from __future__ import annotations

from pathlib import Path

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.exceptions import ObjectAlreadyExists
from prefect.schedules import Cron

from sinq.flows.server import PrefectUnavailable
from sinq.settings import Settings

NIGHTLY = "nightly"
ENTRYPOINT = "sinq.flows.nightly.nightly_generation"
"""By installed module name, so a worker runs the sinq it has installed (editable or wheel), not a file path."""
FINETUNE_ENTRYPOINT = "sinq.flows.finetuning.finetune"
GATE_ENTRYPOINT = "sinq.flows.finetuning.gate"
EVALUATE_ENTRYPOINT = "sinq.flows.evaluation.evaluate"


def ensure_pools(names: list[str]) -> list[str]:
    """Process work pools, created when missing; returns the ones created now."""
    created = []
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process",
                                                       description=f"sinq {name} (process worker)"))
                created.append(name)
            except ObjectAlreadyExists:
                pass
    return created


def deploy_nightly(settings: Settings, name: str = NIGHTLY) -> dict:
    """The nightly deployment with the settings baked into its parameters (what ran is what was deployed). A server
    whose /health answers while its API fails is PrefectUnavailable (one line, exit 5), not an httpx traceback."""
    try:
        return _deploy_nightly(settings, name)
    except httpx.HTTPError as exc:
        raise PrefectUnavailable(f"the Prefect API failed while deploying: {type(exc).__name__}: {exc}",
                                 hint="sinq server status; the server log names the cause") from exc


def _deploy_nightly(settings: Settings, name: str) -> dict:
    from sinq.flows.nightly import nightly_generation, run_tags

    created = ensure_pools([settings.run.work_pool, settings.run.gpu_pool])
    # the worker works in the folder `sinq deploy` ran in: relative paths of the config mean what they meant here
    source = nightly_generation.from_source(source=str(Path.cwd()), entrypoint=ENTRYPOINT)
    deployment_id = source.deploy(
        name=name, work_pool_name=settings.run.work_pool, build=False, push=False, print_next_steps=False,
        schedules=[Cron(settings.run.cron, timezone=settings.run.timezone)],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        parameters={"settings": settings.model_dump(mode="json")}, tags=run_tags(settings),
        description="sinq nightly generation: source → generate → verify → evaluate → store → export",
        ignore_warnings=True)
    gpu = _deploy_gpu(settings)
    return {"deployment": f"nightly-generation/{name}", "deployment_id": str(deployment_id),
            "work_pool": settings.run.work_pool, "cron": settings.run.cron, "timezone": settings.run.timezone,
            "pools_created": created, "gpu_pool": settings.run.gpu_pool, "gpu_deployments": gpu}


def _deploy_gpu(settings: Settings) -> list[str]:
    """The weekly fine-tune (train the evaluator with SFT, gate it against the incumbent, promote on a pass) and the
    gate on its own (run on demand for an adapter trained elsewhere: `prefect deployment run gate/gate -p role=…
    -p adapter_id=…`), with the same settings baked in as the nightly."""
    from sinq.flows.evaluation import evaluate
    from sinq.flows.finetuning import finetune, gate

    data = settings.model_dump(mode="json")
    common = {"work_pool_name": settings.run.gpu_pool, "build": False, "push": False, "print_next_steps": False,
              "ignore_warnings": True, "tags": ["sinq"]}
    cron = settings.run.finetune_cron
    finetune.from_source(source=str(Path.cwd()), entrypoint=FINETUNE_ENTRYPOINT).deploy(
        name="weekly-finetune", schedules=[Cron(cron, timezone=settings.run.timezone)] if cron else [],
        parameters={"settings": data, "role": "evaluator", "kind": "sft", "promote": True},
        description="sinq fine-tune: build the evaluator's SFT set, train it (TRL, LoRA), gate it, promote on a pass",
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        **common)
    gate.from_source(source=str(Path.cwd()), entrypoint=GATE_ENTRYPOINT).deploy(
        name="gate", parameters={"settings": data},
        description="sinq gate: one registered adapter against the incumbent on [eval.gate]'s suites",
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        **common)
    evaluate.from_source(source=str(Path.cwd()), entrypoint=EVALUATE_ENTRYPOINT).deploy(
        name="evaluate", parameters={"settings": data, "role": "evaluator"},
        description="sinq evaluate: a role's agent (its promoted adapter, or -p adapter_id=…) on [eval.gate]'s "
                    "suites, stored with intervals",
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        **common)
    return ["finetune/weekly-finetune", "gate/gate", "evaluate/evaluate"]
