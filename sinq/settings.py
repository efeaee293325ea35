"""Settings: one model per concern, loaded from a TOML file (``--config``, ``SINQ_CONFIG`` or ./sinq.toml)."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ValidationError

from agents.config import AgentsConfig
from flows.config import RunConfig
from game.config import QualityConfig
from game.errors import SinqError
from sandbox.config import SandboxConfig
from sources.splits import SourcesConfig
from training.config import TrainingConfig


class WarehouseConfig(BaseModel):
    """Where the DuckDB file lives; SINQ_DB overrides the file's value."""

    path: Path = Path("sinq.duckdb")
    lock_timeout_s: float = 120.0


class Settings(BaseModel):
    sandbox: SandboxConfig = SandboxConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    agents: AgentsConfig = AgentsConfig()
    run: RunConfig = RunConfig()
    training: TrainingConfig = TrainingConfig()
    sources: SourcesConfig = SourcesConfig()
    quality: QualityConfig = QualityConfig()

    def config_hash(self) -> str:
        """Identifies what a run was asked to do (tagged on every run; stored with it)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SettingsError(SinqError, ValueError):

    exit_code = 2
    pass


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file if there is one; defaults otherwise. CI sets SINQ_REQUIRE_SANDBOX=1."""
    candidate = path or (Path(os.environ["SINQ_CONFIG"]) if os.environ.get("SINQ_CONFIG") else None)
    if candidate is None and Path("sinq.toml").is_file():
        candidate = Path("sinq.toml")
    data: dict = {}
    if candidate is not None:
        try:
            data = tomllib.loads(candidate.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config {candidate}: {exc}") from exc
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(f"invalid config {candidate}: {exc}") from exc
    if os.environ.get("SINQ_DB"):
        settings.warehouse.path = Path(os.environ["SINQ_DB"])
    if os.environ.get("SINQ_REQUIRE_SANDBOX") == "1":
        settings.sandbox.require_isolation = True
    return settings
