"""The presets users start from (examples/*.toml) load, validate, name only real settings, and state the protocol
they claim; the README says how to run each."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from sinq.settings import Settings, load_settings
from tests.test_readme_config import _unknown

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "examples").glob("*.toml"))


def test_both_presets_exist() -> None:
    assert {p.name for p in PRESETS} >= {"paper.toml", "gpu-nightly.toml"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_a_preset_loads_and_names_only_real_settings(preset: Path) -> None:
    settings = load_settings(preset)
    assert _unknown(tomllib.loads(preset.read_text()), Settings) == []
    assert f"examples/{preset.name}" in (ROOT / "README.md").read_text()
    assert settings.eval.gate.enabled


def test_the_paper_preset_is_the_paper_protocol(tmp_path: Path) -> None:
    from sinq.evals.game import HELD_OUT_SPLITS
    from sinq.sources.loaders import load
    from sinq.training.decontam import is_held_out

    s = load_settings(ROOT / "examples" / "paper.toml")
    assert s.run.source.startswith("mbpp:")
    assert s.agents.answers == 10 and s.agents.target_difficulty == 10
    for role in ("generator", "evaluator"):
        agent = getattr(s.agents, role)
        assert agent.kind == "llm" and agent.adapter == "promoted"
        assert (agent.sampling.temperature, agent.sampling.top_p) == (1.0, 0.7)
    assert s.training.build.hard_threshold == 5 and s.training.build.easy_share == 0.1
    assert (s.eval.game.answers, s.eval.game.temperature, s.eval.game.top_p, s.eval.game.hard) == (10, 1.0, 0.7, 5)
    assert [g.suite for g in s.eval.gate.suites][:2] == ["game", "humaneval"]
    # MBPP's train split plays, its test and validation splits are held out (never trained, frozen for the game)
    rows = [{"task_id": t, "text": "t", "code": f"def f(x):\n    return x + {t}\n", "test_list": ["assert f(0) >= 0"]}
            for t in (3, 11, 300, 510, 555, 601, 900)]
    path = tmp_path / "mbpp.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    problems = load(f"mbpp:{path}", splits=s.sources.split)
    held = {int(p.source_id): is_held_out(p.split, p.problem_id, p.source, s.sources.split, HELD_OUT_SPLITS)
            for p in problems}
    assert held == {3: False, 11: True, 300: True, 510: True, 555: True, 601: False, 900: False}


def test_the_gpu_nightly_preset_serves_both_agents_and_schedules_the_gpu_pool() -> None:
    s = load_settings(ROOT / "examples" / "gpu-nightly.toml")
    for role in ("generator", "evaluator"):
        agent = getattr(s.agents, role)
        assert agent.kind == "llm" and agent.backend == "openai" and agent.base_url and agent.adapter == "promoted"
    assert s.run.cron and s.run.finetune_cron and s.run.gpu_pool != s.run.work_pool
    assert s.training.base_model and s.eval.gate.device == "cuda"
