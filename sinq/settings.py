"""Settings: one model per concern, loaded from a TOML file (``--config``, ``SINQ_CONFIG`` or ./sinq.toml)."""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from sinq.agents.config import AgentsConfig
from sinq.evals.config import EvalConfig
from sinq.flows.config import RunConfig
from sinq.game.config import QualityConfig
from sinq.game.errors import SinqError
from sinq.game.hashing import json_sha256
from sinq.sandbox.config import SandboxConfig
from sinq.sources.config import SourcesConfig
from sinq.training.config import TrainingConfig
from sinq.warehouse.config import WarehouseConfig


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sandbox: SandboxConfig = SandboxConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    agents: AgentsConfig = AgentsConfig()
    run: RunConfig = RunConfig()
    training: TrainingConfig = TrainingConfig()
    sources: SourcesConfig = SourcesConfig()
    quality: QualityConfig = QualityConfig()
    eval: EvalConfig = EvalConfig()

    def config_hash(self) -> str:
        """Identifies what a run was asked to do (tagged on every run; stored with it). The pass is which night it
        is, not what was asked: every night of one deployment has one config hash."""
        return json_sha256(self.model_dump(mode="json", exclude={"run": {"pass_id"}}))[:16]


class SettingsError(SinqError, ValueError):
    """The config file (or a flag on top of it) cannot be used as written: exit 2, with what to change."""

    exit_code = 2


def _model_at(path: tuple, model: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The settings model a validation location points into (None below a dict or list)."""
    model = model or Settings
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model


def _problem(error: dict, root: type[BaseModel]) -> str:
    """One validation error in words: an unknown key with the closest known one, else where and what."""
    loc = tuple(error["loc"])
    where = ".".join(map(str, loc))
    if error["type"] == "extra_forbidden":
        section, key = loc[:-1], str(loc[-1])
        model = _model_at(section, root)
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        table = not section and isinstance(error.get("input"), dict)
        label = f"[{'.'.join(map(str, section))}] {key}" if section else f"[{key}]" if table else key
        guess = f" — did you mean `{close[0]}`?" if close else (f" (known: {', '.join(known)})" if known else "")
        return f"unknown {'section' if table else 'key'} {label}{guess}"
    return f"{where or '(top level)'}: {error['msg'].removeprefix('Value error, ')}"


def settings_error(exc: ValidationError, source: object, root: type[BaseModel] | None = None) -> SettingsError:
    """A pydantic ValidationError of the settings as one line: ``source`` names what was read ("config PATH"),
    ``root`` the model that was validated."""
    problems = [_problem(e, root or Settings) for e in exc.errors()]
    unknown = all(p.startswith("unknown ") for p in problems)
    return SettingsError(f"{'' if unknown else 'invalid '}{source}: {'; '.join(problems)}",
                         hint="the config keys are listed in README.md (Configuration)" if unknown else None)


def _read(path: Path) -> dict:
    """The file as a TOML table, or one line naming the file and what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"config {path} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})",
                            hint="save it as UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config {path} is not valid TOML: {exc}") from exc


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file if there is one; defaults otherwise. CI sets SINQ_REQUIRE_SANDBOX=1."""
    candidate = path or (Path(os.environ["SINQ_CONFIG"]) if os.environ.get("SINQ_CONFIG") else None)
    if candidate is None and Path("sinq.toml").is_file():
        candidate = Path("sinq.toml")
    data = _read(candidate) if candidate is not None else {}
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise settings_error(exc, f"config {candidate}" if candidate else "config (defaults)") from exc
    if os.environ.get("SINQ_DB"):
        settings.warehouse.path = Path(os.environ["SINQ_DB"])
    if os.environ.get("SINQ_REQUIRE_SANDBOX") == "1":
        settings.sandbox.require_isolation = True
    return settings
