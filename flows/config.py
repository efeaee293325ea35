"""What a nightly run does and when (``[run]`` in the config file). Plain pydantic: no Prefect import here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field("humaneval", description="problem source spec, as in `sinq sources validate`")
    limit: int | None = Field(None, ge=1, description="at most this many problems (None: all)")
    round: int = Field(0, ge=0, description="self-play round the samples belong to: which adapters play (a new "
                       "night, not a new round, asks for fresh samples)")
    pass_id: str | None = Field(None, min_length=1, max_length=64, description="the sampling pass this run belongs "
                                "to, part of every generator and evaluator request key (a rerun of the same pass "
                                "adds nothing); None: the flow run's scheduled date (YYYY-MM-DD in `timezone`)")
    exhausted_after: int = Field(3, ge=1, description="a problem with no new unique verified pair in this many "
                                 "passes of the generator in a row is exhausted: recorded and skipped")
    batch_size: int = Field(32, ge=1, description="problems per Prefect task (tasks are batches, never executions)")
    export_dir: Path | None = Field(Path("exports"), description="a Parquet snapshot per run lands here; None: off")
    cron: str = Field("0 2 * * *", description="nightly schedule of the deployment")
    timezone: str = Field("UTC", description="IANA timezone of the schedule")
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = Field(None, description="a Dask scheduler (tcp://host:8786); None: a LocalCluster")
    dask_workers: int = Field(2, ge=1, description="LocalCluster workers when no address is given")
    sandbox_slots: int = Field(4, ge=1, description="global concurrency limit: sandbox batches at once, fleet-wide "
                               "(each process also serialises its own batches on its sandbox pool)")
    llm_slots: int = Field(2, ge=1, description="global concurrency limit: LLM batches at once, fleet-wide")
    slot_wait_s: float = Field(1800.0, gt=0, le=86400, description="a batch waits at most this long for a "
                               "fleet-wide slot, saying so in the log, then fails with SlotTimeout (exit 5)")
    work_pool: str = Field("sinq-cpu", description="work pool of the nightly deployment")
    gpu_pool: str = Field("sinq-gpu", description="work pool of the fine-tune and gate deployments (`sinq deploy`)")
    finetune_cron: str | None = Field("0 4 * * 0", description="schedule of the weekly fine-tune deployment (train "
                                      "the evaluator with SFT, gate, promote); \"\": registered unscheduled")
    audit_sample: int = Field(20, ge=0, description="verified pairs of the run, and as many equivalent pairs (on "
                              "every input they were fuzzed on), re-verified from scratch after evaluation (fresh "
                              "processes, other hash seeds); the figure is in the summary; 0 = off")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @field_validator("cron", "finetune_cron")
    @classmethod
    def _valid_cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Checked with the config, not first at `sinq deploy`, by the parser Prefect schedules with (imported only
        when a config sets cron: Prefect is slow to import)."""
        from prefect.client.schemas.schedules import CronSchedule

        if not value and info.field_name == "finetune_cron":  # TOML has no null: "" leaves it unscheduled
            return None
        try:
            CronSchedule(cron=value)
        except ValidationError as exc:
            raise ValueError(f"not a cron schedule: {value!r} (five fields: minute hour day month weekday, e.g. "
                             "'0 2 * * *')") from exc
        return value
