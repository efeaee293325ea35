"""Sandbox settings: one typed model, defaults that work on a laptop, every field reachable from CLI and config."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Limits(BaseModel):
    """Per-execution resource limits, enforced in every child (rlimits) and, for Docker, per container too."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(2.0, ge=0.05, le=3600, description="CPU-time budget of one execution (s); outside "
                             "[0.05, 3600] outcomes would reflect the machine, not the program")
    memory_mb: int = Field(512, ge=64, le=1 << 20, description="address-space limit of one execution")
    max_file_mb: int = Field(16, ge=1, description="largest file (and captured output) an execution may write")
    max_open_files: int = Field(64, ge=16)
    max_processes: int = Field(32, ge=1, description="processes + threads of one execution (RLIMIT_NPROC)")
    max_result_nodes: int = Field(2_000_000, ge=1000, description="nodes encoded from a return value")
    max_result_bytes: int = Field(1 << 20, ge=1 << 12, description="size of one reported outcome")

    def wire(self) -> dict:
        return self.model_dump()


class DockerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = "sinq-sandbox:latest"
    containers_per_seed: int = Field(0, ge=0, description="single-slot containers per hash seed; 0 = one per core")
    memory_mb: int = Field(1024, ge=128, description="container memory (= memory-swap)")
    pids_limit: int = Field(256, ge=16)
    tmpfs_mb: int = Field(128, ge=16)
    uid: int = Field(65534, ge=1, description="non-root uid the container runs as")
    base_url: str | None = Field(None, description="Docker socket; default DOCKER_HOST or the system socket")


class SandboxConfig(BaseModel):
    """How programs are executed and how their outcomes are compared (DESIGN.md §3-4)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "docker"] = "local"
    python: str | None = Field(
        None, description="interpreter the local backend runs programs with (default: the one running sinq)"
    )
    limits: Limits = Limits()
    compare: Literal["strict", "loose"] = Field(
        "strict", description="strict: canonical type-strict encoding; loose: Python == on numbers and builtins"
    )
    hash_seeds: tuple[int, int] = Field((1, 2), description="two distinct PYTHONHASHSEED values (0 to 4294967295) "
                                        "every divergence must survive")
    repeats: int = Field(2, ge=1, description="runs per side and hash seed before a divergence is trusted")
    longer_budget_factor: float = Field(4.0, ge=1.0, description="timeout/limit multiplier for re-checking a side")
    workers_per_seed: int = Field(0, ge=0, description="warm worker processes per hash seed; 0 = one per two cores")
    slots_per_worker: int = Field(3, ge=1, description="concurrent executions per worker")
    chunk_size: int = Field(128, ge=1, description="jobs sent to a worker at once")
    uid_base: int = Field(2_000_000, ge=1000, description="first uid of the per-slot unprivileged uids (root only)")
    tmpfs_mb: int = Field(64, ge=8, description="private tmpfs per slot")
    max_program_bytes: int = Field(256 * 1024, ge=1024)
    max_input_bytes: int = Field(1 << 20, ge=1024)
    require_isolation: bool = Field(
        False, description="refuse to run without bwrap's filesystem view (CI sets SINQ_REQUIRE_SANDBOX=1)"
    )
    docker: DockerSettings = DockerSettings()

    @field_validator("hash_seeds")
    @classmethod
    def _two_seeds(cls, seeds: tuple[int, int]) -> tuple[int, int]:
        """Two equal seeds are one: a divergence that hangs on set or dict order would pass as real."""
        if seeds[0] == seeds[1]:
            raise ValueError(f"the two hash seeds must differ (got {seeds[0]} twice)")
        if not all(0 <= seed <= 4294967295 for seed in seeds):
            raise ValueError("a hash seed is a PYTHONHASHSEED: 0 to 4294967295")
        return seeds

    def resolved_workers(self) -> int:
        return self.workers_per_seed or max(1, (os.cpu_count() or 1) // 2)
