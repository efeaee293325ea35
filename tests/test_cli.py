"""The `sinq` commands, run as a user runs them (a real subprocess, real sandbox)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sinq.sandbox.local import bwrap_path


def sinq(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "sinq.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SINQ_CONFIG": ""})
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def sandbox_available(local_backend) -> None:
    assert bwrap_path() is not None


def test_verify_prints_one_verdict_per_line_in_order(tmp_path: Path, sandbox_available) -> None:
    lines = [
        {"id": "a", "original": "def f(x):\n    return x\n", "variant": "def f(x):\n    return -x\n",
         "entry_point": "f", "input": {"x": 2}},
        "this is not json",
        {"id": "c", "original": "def f(x):\n    return x\n", "variant": "def f(x):\n    return x\n",
         "entry_point": "f", "input": "{'x': (1, 2)}"},
        {"id": "d", "original": "def f(x):\n    return x\n"},
    ]
    source = tmp_path / "pairs.jsonl"
    source.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    done = sinq("verify", str(source), "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "line-2", "c", "d"]
    assert [(r["verdict"], r["reason"]) for r in rows] == [
        ("diverges", "different_value"), ("invalid", "malformed_line"), ("same", "same_value"),
        ("invalid", "missing_field")]
    assert set(rows[0]) >= {"id", "verdict", "reason", "original", "variant"}
    assert rows[0]["original"]["value"] == "2" and rows[0]["variant"]["value"] == "-2"


def test_bench_prints_figures_with_a_same_run_baseline(sandbox_available) -> None:
    done = sinq("sandbox", "bench", "--json", "--executions", "300", "--baseline-runs", "200")
    result = json.loads(done.stdout)
    assert {"backend", "executions_per_s", "baseline", "baseline_executions_per_s", "ratio"} <= set(result)
    assert result["backend"] == "local"
    assert result["executions_per_s"] > 0 and result["baseline_executions_per_s"] > 0
    assert result["unexpected_outcomes"] == 0
    assert result["ratio"] == pytest.approx(result["executions_per_s"] / result["baseline_executions_per_s"],
                                            rel=0.01)


def test_selftest_reports_every_case_contained(sandbox_available) -> None:
    done = sinq("sandbox", "selftest", "--json")
    result = json.loads(done.stdout)
    assert result["failures"] == []
    assert result["cases"] == result["contained"] >= 25


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "sinq.toml"
    config.write_text("[sandbox]\nrepeats = 'many'\n")
    done = sinq("sandbox", "info", "--config", str(config), check=False)
    assert done.returncode == 2
    assert "invalid config" in done.stderr


def test_unknown_backend_is_a_clear_error(tmp_path: Path) -> None:
    done = sinq("sandbox", "info", "--backend", "vm", check=False)
    assert done.returncode == 2 and "unknown backend" in done.stderr
