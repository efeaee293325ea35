"""Many hosts, nothing shared but the scheduler: Dask workers started as their own processes, in another working
directory and SINQ_HOME, inside a mount namespace where the warehouse's directory is an empty tmpfs (bubblewrap
over the same root). They play every batch; the flow's process stores everything. The pairs equal a threads run's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from sinq.flows.config import RunConfig
from sinq.settings import Settings
from sinq.warehouse.config import WarehouseConfig
from tests.conftest import fast_config

PAIRS = ("SELECT pair_id, problem_id, variant_code, diverging_input, difficulty FROM verified_pairs "
         "ORDER BY pair_id")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _settings(db: Path, **run) -> Settings:
    return Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=db),
                    run=RunConfig(**({"limit": 6, "batch_size": 2, "export_dir": None} | run)))


def _run(settings: Settings) -> dict:
    from sinq.flows.nightly import for_settings

    return for_settings(settings)(settings.model_dump(mode="json"))


@pytest.fixture
def cluster(prefect_server, local_backend, tmp_path: Path):
    """A scheduler and two single-threaded workers that cannot see ``tmp_path/flowside`` (the warehouse's folder)."""
    from sinq.sandbox.local import bwrap_path

    hidden = tmp_path / "flowside"
    hidden.mkdir()
    elsewhere = tmp_path / "worker-host"
    elsewhere.mkdir()
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SINQ_", "DASK_"))}
    env |= {"PREFECT_API_URL": prefect_server, "SINQ_HOME": str(elsewhere / "home"), "PREFECT_LOGGING_LEVEL": "WARNING",
            "SINQ_REQUIRE_SANDBOX": os.environ.get("SINQ_REQUIRE_SANDBOX", "")}
    dask = [sys.executable, "-m", "distributed.cli.dask_worker"]
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-dashboard"], cwd=elsewhere, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    for name in ("a", "b"):
        processes.append(subprocess.Popen(
            [bwrap_path(), "--dev-bind", "/", "/", "--tmpfs", str(hidden), "--die-with-parent", "--",
             *dask, address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--name", name,
             "--local-directory", str(elsewhere / name)],
            cwd=elsewhere, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    from distributed import Client

    client = Client(address, timeout=60)
    try:
        deadline = time.monotonic() + 120
        while len(client.scheduler_info()["workers"]) < 2:
            assert time.monotonic() < deadline, "the Dask workers did not join within 120 s"
            assert all(p.poll() is None for p in processes), "a Dask process exited while starting"
            time.sleep(0.5)
        yield client, address, hidden
    finally:
        client.close()
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_workers_that_cannot_see_the_warehouse_make_the_same_pairs_as_one_host(cluster, tmp_path: Path) -> None:
    client, address, hidden = cluster
    db = hidden / "w.duckdb"
    seen = client.run(lambda path=str(db): (os.path.exists(path), os.listdir(os.path.dirname(path)), os.getcwd()))
    assert len(seen) == 2
    assert all(exists is False and listing == [] and str(hidden) not in cwd for exists, listing, cwd in seen.values())

    spread = _run(_settings(db, task_runner="dask", dask_address=address))
    single = _run(_settings(tmp_path / "single.duckdb"))

    assert spread["failed_batches"] == [] and spread["verified_pairs"] >= 3
    assert _rows(db, PAIRS) == _rows(tmp_path / "single.duckdb", PAIRS)
    assert (spread["verified_pairs"], spread["evaluated_pairs"], spread["difficulty_histogram"]) == (
        single["verified_pairs"], single["evaluated_pairs"], single["difficulty_histogram"])
    assert spread["sandbox"]["seconds"]["search"] > 0 and spread["sandbox"]["seconds"]["verdicts"] > 0
    assert spread["search"]["picked"] == single["search"]["picked"] > 0
    ran_on = client.run(lambda: os.getpid())
    assert set(ran_on) and os.getpid() not in ran_on.values()
