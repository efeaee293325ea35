"""Where the warehouse lives (``[warehouse]`` in the config file). Plain pydantic, like every room's config."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class WarehouseConfig(BaseModel):
    """Where the DuckDB file lives; SINQ_DB overrides the file's value."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Path("sinq.duckdb")
    lock_timeout_s: float = Field(120.0, gt=0, description="how long a locked file is waited for (s)")
