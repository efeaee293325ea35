"""Registers the nightly deployment (cron + IANA timezone from [run], concurrency limit 1: runs never overlap) and the
work pools it needs, from the same facts prefect.yaml states for people who use `prefect deploy`."""

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
GPU_POOL = "sinq-gpu"


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

    created = ensure_pools([settings.run.work_pool, GPU_POOL])
    # the worker works in the folder `sinq deploy` ran in: relative paths of the config mean what they meant here
    source = nightly_generation.from_source(source=str(Path.cwd()), entrypoint=ENTRYPOINT)
    deployment_id = source.deploy(
        name=name, work_pool_name=settings.run.work_pool, build=False, push=False, print_next_steps=False,
        schedules=[Cron(settings.run.cron, timezone=settings.run.timezone)],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        parameters={"settings": settings.model_dump(mode="json")}, tags=run_tags(settings),
        description="sinq nightly generation: source → generate → verify → evaluate → store → export",
        ignore_warnings=True)
    return {"deployment": f"nightly-generation/{name}", "deployment_id": str(deployment_id),
            "work_pool": settings.run.work_pool, "cron": settings.run.cron, "timezone": settings.run.timezone,
            "pools_created": created}
