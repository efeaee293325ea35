"""The README's configuration reference stays true: it parses, validates, and names only settings that exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel

from sinq.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _unknown(data: dict, model: type[BaseModel], where: str = "") -> list[str]:
    problems = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            problems.append(f"{where}{key}")
            continue
        annotation = field.annotation
        if isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            problems += _unknown(value, annotation, f"{where}{key}.")
    return problems


def test_the_configuration_reference_names_real_settings() -> None:
    block = re.search(r"## Configuration.*?```toml\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    data = tomllib.loads(block.group(1))
    settings = Settings.model_validate(data)
    assert _unknown(data, Settings) == []
    assert settings.quality.dedup.near_threshold == data["quality"]["dedup"]["near_threshold"]
    assert settings.run.audit_sample == data["run"]["audit_sample"]
