"""Shared fixtures. Real parts only: real bwrap-sandboxed workers, a real Docker Engine when one is reachable.

Locally a missing part skips with the reason; CI sets SINQ_REQUIRE_SANDBOX, _DOCKER, _LLM and _VLLM to 1, which turn
those skips into failures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sinq.sandbox.config import Limits, SandboxConfig


def missing(what: str, reason: str, variable: str) -> None:
    if os.environ.get(variable) == "1":
        pytest.fail(f"{what} is required here ({variable}=1) but unavailable: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


def fast_config(**update: object) -> SandboxConfig:
    """Short budgets so that timeout rules are exercised in seconds; everything else as shipped."""
    limits = Limits(timeout_s=0.5)
    return SandboxConfig(limits=limits, longer_budget_factor=2.0, workers_per_seed=1, slots_per_worker=4,
                         require_isolation=os.environ.get("SINQ_REQUIRE_SANDBOX") == "1").model_copy(update=update)


@pytest.fixture(scope="session")
def local_backend():
    from sinq.sandbox.errors import SandboxUnavailable
    from sinq.sandbox.local import LocalBackend, bwrap_path

    if bwrap_path() is None:
        missing("bwrap", "bubblewrap is not installed", "SINQ_REQUIRE_SANDBOX")
    try:
        backend = LocalBackend(fast_config())
        backend.start()
    except SandboxUnavailable as exc:
        missing("the local sandbox", str(exc), "SINQ_REQUIRE_SANDBOX")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def docker_backend():
    from sinq.sandbox.docker_backend import DockerBackend
    from sinq.sandbox.errors import SandboxUnavailable

    try:
        backend = DockerBackend(fast_config(backend="docker"), workers_per_seed=2)
        backend.start()
    except SandboxUnavailable as exc:
        missing("Docker", str(exc), "SINQ_REQUIRE_DOCKER")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random Qwen2-typed chat model made on the spot (nothing can be downloaded here)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        missing("torch/transformers", f"{exc} (install the llm extra: make .venv/.llm-installed)", "SINQ_REQUIRE_LLM")
    from sinq.agents.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def vllm_python():
    from sinq.agents.vllm_batch_backend import default_vllm_python

    python = default_vllm_python()
    if not os.path.exists(python):
        missing("the vLLM environment", f"{python} not found (make vllm-env)", "SINQ_REQUIRE_VLLM")
    return python


@pytest.fixture(scope="session")
def prefect_server():
    """One real Prefect server (prefect_test_harness: a subprocess API on a temporary SQLite) for the session;
    yields its API URL, which subprocesses get through PREFECT_API_URL."""
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


def read_rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of a warehouse file, read-only, the connection closed again (the flow may write next)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def run_night(settings) -> dict:
    """One nightly flow run on these settings (a Prefect server must be up: the ``prefect_server`` fixture)."""
    from sinq.flows.nightly import for_settings

    return for_settings(settings)(settings.model_dump(mode="json"))


def fresh_verify(tmp_path: Path, claims: list[tuple]) -> list[dict]:
    """``sinq verify --json`` in a new process on (id, original, variant, entry point, input) claims: what a user
    re-checking stored pairs would see."""
    import json
    import subprocess
    import sys

    source = tmp_path / "claims.jsonl"
    source.write_text("".join(json.dumps({"id": c[0], "original": c[1], "variant": c[2], "entry_point": c[3],
                                          "input": c[4]}) + "\n" for c in claims))
    config = tmp_path / "sinq.toml"
    config.write_text("[sandbox]\nbackend = \"local\"\n[sandbox.limits]\ntimeout_s = 0.5\n")
    done = subprocess.run([sys.executable, "-m", "sinq", "verify", str(source), "--json", "--config", str(config)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
