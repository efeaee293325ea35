"""Shared fixtures. Real parts only: real bwrap-sandboxed workers, a real Docker Engine when one is reachable.

Locally a missing part skips with the reason; CI sets SINQ_REQUIRE_SANDBOX, _DOCKER, _LLM and _VLLM to 1, which turn
those skips into failures.
"""

from __future__ import annotations

import os

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
