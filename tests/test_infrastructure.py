"""Issue 12, the failures that must never become data: a too-small budget or a lost sandbox worker is never a
validation result or a verdict; a repeated or resumed evaluation stores the same rows; leaked concurrency slots
come back, a wait for one is said and bounded; a killed run is marked crashed (in the warehouse and in Prefect); an
evaluate batch whose generate batch failed says so. Real DuckDB, real sandbox, real Prefect server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from sinq.flows.config import RunConfig
from sinq.sandbox.config import Limits
from sinq.sandbox.errors import SandboxUnavailable
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.shared import close_shared_pools, install_pool
from sinq.settings import Settings
from sinq.tasks import liveness, nightly, stages
from sinq.warehouse.config import WarehouseConfig
from tests.conftest import fast_config

ROOT = Path(__file__).resolve().parent.parent
PROVENANCE = {"run_id", "created_at", "wall_s", "started_at", "finished_at", "heartbeat_at"}


def _settings(db: Path, timeout_s: float = 0.5, **run) -> Settings:
    sandbox = fast_config().model_copy(update={"limits": Limits(timeout_s=timeout_s)})
    return Settings(sandbox=sandbox, warehouse=WarehouseConfig(path=db),
                    run=RunConfig(**({"limit": 8, "batch_size": 4, "export_dir": None, "audit_sample": 0} | run)))


def _untimed(value: object) -> object:
    """An outcome's JSON without its measured seconds: timing is measurement, not content."""
    if isinstance(value, str) and value.startswith("{") and '"wall_s"' in value:
        data = json.loads(value)
        for key in ("wall_s", "run_s"):
            data.pop(key, None)
        return json.dumps(data, sort_keys=True)
    return value


def _rows(db: Path, tables: tuple[str, ...] | None = None, drop: set[str] = PROVENANCE) -> dict[str, list[tuple]]:
    """Every row of every table (or of ``tables``), without the provenance columns that name a run or a time."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = tables or tuple(r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_name NOT IN "
            "('runs', 'schema_version') ORDER BY 1").fetchall())
        out = {}
        for table in names:
            columns = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table]).fetchall() if r[0] not in drop]
            out[table] = sorted((tuple(_untimed(v) for v in row) for row in con.execute(
                f"SELECT {', '.join(columns)} FROM {table}").fetchall()), key=repr)
        return out
    finally:
        con.close()


def _query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# ---- finding 1: an infrastructure outcome is never stored as a fact
SLOW = "def total(n):\n    s{k} = 0\n    for i in range(n):\n        s{k} += i * i\n    return s{k}\n"


def _source(tmp_path: Path) -> str:
    """Four MBPP-format problems, two of which need ~0.5 s of CPU: a 0.05 s budget times them out."""
    rows = [{"task_id": i, "text": f"problem {i}", "code": SLOW.format(k=i), "test_list": [f"assert total({n}) == {s}"]}
            for i, (n, s) in enumerate((n, n * (n - 1) * (2 * n - 1) // 6) for n in (10, 6_000_000, 3, 7_000_000))]
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"mbpp:{path}"


def test_a_too_small_budget_does_not_poison_later_runs(local_backend, tmp_path: Path) -> None:
    """The issue's repro with a budget the bounds still allow: 0.05 s rejects two problems as timeouts; the same
    budget re-checks them (a timeout is never trusted across runs), and the next run with a sane budget validates
    them again (another validation key) and finds what a fresh database finds. Today: 'usable 2' for ever."""
    db, fresh_db = tmp_path / "w.duckdb", tmp_path / "fresh.duckdb"
    source = _source(tmp_path)
    try:
        tiny = stages.source_problems(_settings(db, 0.05, source=source), "run-tiny")
        stored_tiny = _rows(db, ("problems", "validations"))
        again = stages.source_problems(_settings(db, 0.05, source=source), "run-tiny-2")
        sane = stages.source_problems(_settings(db, 5.0, source=source), "run-sane")
        reference = stages.source_problems(_settings(fresh_db, 5.0, source=source), "run-fresh")
        trusted = stages.source_problems(_settings(db, 5.0, source=source), "run-sane-2")
    finally:
        close_shared_pools()
    assert tiny["usable"] == 2 and tiny["rejected"] == {"fails_own_tests:timeout": 2}, tiny["rejected"]
    assert again["validated_now"] == 2 and again["usable"] == 2, "a timeout is re-checked before it is trusted"
    assert sane["validated_now"] == 4 and sane["usable"] == reference["usable"] == 4
    assert sane["problem_ids"] == reference["problem_ids"]
    assert trusted["validated_now"] == 0, "a valid result under the same key is trusted"
    after = _rows(db, ("problems", "validations"))
    assert set(stored_tiny["validations"]) <= set(after["validations"]), "a stored validation was lost"
    assert after["problems"] == stored_tiny["problems"], "the problems table is insert-only"


class _LostWorkers(WorkerPool):
    """A pool whose every worker is lost, even after replacement: the pool's own ``_lost`` outcome for each job. A
    real worker cannot be made to die on demand (programs are contained by design)."""

    backend = "lost"

    def __init__(self, config) -> None:
        self.config = config

    def run(self, jobs):
        return [self._lost(job.hash_seed or 1, "worker exited (code 1)") for job in jobs]

    def close(self) -> None:
        pass


def test_a_lost_worker_is_an_error_never_a_verdict_nor_a_validation(local_backend, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    settings = _settings(db)
    try:
        ids = stages.source_problems(settings, "run-1")["problem_ids"]
        stored = stages.generate_batch(settings, "run-1", ids[:4])
        assert stored["verified_pairs"] > 0
        before = _rows(db)
        close_shared_pools()
        install_pool(settings.sandbox, _LostWorkers(settings.sandbox))
        with pytest.raises(SandboxUnavailable, match="nothing of this batch was stored"):
            stages.generate_batch(settings, "run-2", ids[4:])
        with pytest.raises(SandboxUnavailable, match="nothing of this batch was stored"):
            stages.evaluate_batch(settings, "run-2", ids[:4])
        more = _settings(db, limit=12)
        with pytest.raises(SandboxUnavailable, match="nothing was recorded as a validation result"):
            stages.source_problems(more, "run-2")
        assert _rows(db) == before, "an infrastructure failure changed the stored data"
        assert isinstance(SandboxUnavailable("x"), nightly.INFRASTRUCTURE), "retried as infrastructure"
    finally:
        close_shared_pools()


# ---- finding 4: ids are content, so a repeated or resumed evaluation stores exactly the same rows
def test_an_evaluation_resumed_by_another_run_stores_what_one_run_stores(local_backend, tmp_path: Path) -> None:
    one, resumed = tmp_path / "one.duckdb", tmp_path / "resumed.duckdb"
    try:
        for db, evaluator_run in ((one, "run-1"), (resumed, "run-2")):
            settings = _settings(db)
            ids = stages.source_problems(settings, "run-1")["problem_ids"]
            stages.generate_batch(settings, "run-1", ids)
            stages.evaluate_batch(settings, evaluator_run, ids)
        again = stages.evaluate_batch(_settings(resumed), "run-3", ids)
    finally:
        close_shared_pools()
    assert again["evaluated_pairs"] == 0
    reference = _rows(one)
    assert reference["verdicts"] and reference["evaluator_answers"]
    assert _rows(resumed) == reference
    runs = {r[0] for r in _query(resumed, "SELECT DISTINCT run_id FROM difficulty_labels")}
    assert runs == {"run-2"}, "run_id is the provenance of the first store"


# ---- finding 5: the control plane: leaked slots come back, a wait is said and bounded, a lost API is one message
def _set_slots(name: str, active: int) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 4)
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=active))


def _active(name: str) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def test_leaked_slots_come_back_at_run_start(prefect_server, local_backend, tmp_path: Path) -> None:
    """A restarted server keeps its slot counters but forgets the leases: 4/4 held by nobody. Today the next run
    waits 1,800 s per attempt; it must release them (no live run holds them) and finish."""
    from sinq.flows.nightly import for_settings

    _set_slots(nightly.SANDBOX_LIMIT, 4)
    settings = _settings(tmp_path / "w.duckdb", limit=4)
    started = time.monotonic()
    summary = for_settings(settings)(settings.model_dump(mode="json"))
    assert summary["problems"] == 4 and not summary["failed_batches"]
    assert time.monotonic() - started < 300
    assert _active(nightly.SANDBOX_LIMIT) == 0


def test_a_run_waiting_for_a_slot_says_so_and_fails_in_bounded_time(prefect_server, local_backend, tmp_path: Path,
                                                                     monkeypatch, caplog) -> None:
    """Slots held by a live run (another RUNNING nightly flow run) are not taken away; the waiting run logs the
    wait and ends with a clear SlotTimeout after the configured bound, its run row failed with that message."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from sinq.flows.nightly import for_settings, nightly_generation

    with get_client(sync_client=True) as client:
        other = client.create_flow_run(nightly_generation, name="a-live-holder", state=Running())
    _set_slots(nightly.SANDBOX_LIMIT, 4)
    monkeypatch.setattr(nightly, "SLOT_NOTICE_S", 1.0)
    db = tmp_path / "w.duckdb"
    settings = _settings(db, limit=4, slot_wait_s=4.0)
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            for_settings(settings)(settings.model_dump(mode="json"))
        assert time.monotonic() - started < 120
        assert "slot" in str(raised.value)
        assert any("waiting up to" in r.getMessage() for r in caplog.records)
        [(status, error)] = _query(db, "SELECT status, error FROM runs")
        assert status == "failed" and "no 'sinq-sandbox' slot" in error
    finally:
        with get_client(sync_client=True) as client:
            from prefect.states import Cancelled

            client.set_flow_run_state(other.id, Cancelled(), force=True)
        _set_slots(nightly.SANDBOX_LIMIT, 0)


# ---- finding 11: a SIGKILLed run is marked crashed, in the warehouse and in Prefect
def _sinq(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sinq.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_a_killed_run_is_marked_crashed_by_db_info(prefect_server, local_backend, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    config = tmp_path / "sinq.toml"
    config.write_text("[sandbox]\nworkers_per_seed = 1\n[sandbox.limits]\ntimeout_s = 0.5\n"
                      "[run]\nlimit = 16\nbatch_size = 2\naudit_sample = 0\n")
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_LOGGING_LEVEL": "WARNING", "SINQ_CONFIG": ""}
    db = tmp_path / "w.duckdb"
    victim = _sinq("run", "--config", str(config), "--db", str(db), "--json", env=env)
    deadline = time.monotonic() + 240
    while True:
        assert victim.poll() is None, f"the run ended before it could be killed: {victim.communicate()}"
        assert time.monotonic() < deadline, "no batch was stored within 240 s"
        try:
            if db.exists() and _query(db, "SELECT count(*) FROM samples")[0][0]:
                break
        except duckdb.Error:
            pass
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    before = _rows(db)
    [(run_id, status)] = _query(db, "SELECT run_id, status FROM runs")
    assert status == "running"
    done = subprocess.run([sys.executable, "-m", "sinq.cli", "db", "info", "--db", str(db), "--json"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["marked_crashed"] == [run_id]
    [(status, error)] = _query(db, "SELECT status, error FROM runs")
    assert status == "crashed" and "process is gone" in error
    assert _rows(db) == before, "marking the run crashed changed what it stored"
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(uuid.UUID(run_id)).state.type.value == "CRASHED"
    again = subprocess.run([sys.executable, "-m", "sinq.cli", "db", "info", "--db", str(db), "--json"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout)["marked_crashed"] == []


def test_a_later_run_marks_a_dead_one_crashed(local_backend, tmp_path: Path) -> None:
    """A run row of this host whose pid is gone, and one of another host silent for longer than the bound."""
    from datetime import UTC, datetime, timedelta

    from sinq.warehouse.store import Warehouse

    db = tmp_path / "w.duckdb"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    now = datetime.now(UTC)
    rows = [{"run_id": "dead-here", "kind": "nightly", "status": "running", "started_at": now,
             **liveness.run_identity(), "pid": int(gone.stdout)},
            {"run_id": "silent-elsewhere", "kind": "nightly", "status": "running", "started_at": now, "host": "x",
             "pid": 1, "heartbeat_at": now - timedelta(seconds=liveness.STALE_AFTER_S + 60)},
            {"run_id": "alive-here", "kind": "nightly", "status": "running", "started_at": now,
             **liveness.run_identity()},
            {"run_id": "recent-elsewhere", "kind": "nightly", "status": "running", "started_at": now, "host": "x",
             "pid": 1, "heartbeat_at": now}]
    Warehouse(db).store({"runs": rows})
    marked = liveness.reap_stale_runs(Warehouse(db))
    assert sorted(d["run_id"] for d in marked) == ["dead-here", "silent-elsewhere"]
    assert dict(_query(db, "SELECT run_id, status FROM runs")) == {
        "dead-here": "crashed", "silent-elsewhere": "crashed", "alive-here": "running",
        "recent-elsewhere": "running"}


# ---- the small thing: an evaluate batch whose generate batch failed says it was skipped, and why
def test_an_evaluate_batch_says_it_was_skipped_because_its_generate_batch_failed(prefect_server, local_backend,
                                                                                  tmp_path: Path) -> None:
    from sinq.flows.nightly import for_settings

    settings = _settings(tmp_path / "w.duckdb", limit=4, batch_size=2)
    data = settings.model_dump(mode="json")
    data["agents"]["generator"] = {"kind": "llm", "backend": "transformers", "model": str(tmp_path / "no-model")}
    settings = Settings.model_validate(data)
    with pytest.raises(RuntimeError) as raised:
        for_settings(settings)(settings.model_dump(mode="json"))
    message = str(raised.value)
    import re

    assert re.search(r"evaluate-(\d): skipped because generate-\1 failed", message), message
    [(status, error)] = _query(tmp_path / "w.duckdb", "SELECT status, error FROM runs")
    assert status == "failed" and "skipped because generate" in error


def _rows_once_readable(db: Path) -> dict:
    """The tables' rows as soon as the file can be read (the run may hold its write lock for a moment)."""
    while True:
        try:
            return _rows(db)
        except duckdb.Error:
            time.sleep(0.1)


def test_a_run_whose_prefect_api_goes_away_ends_with_one_message_and_its_work_intact(local_backend,
                                                                                      tmp_path: Path) -> None:
    """Our own server (its own SINQ_HOME and port), stopped by PID mid-run: the run notices within seconds, closes its
    run row as failed with "went away … rerun to resume", keeps everything it stored, and the process ends in bounded
    time (exit 5) with the CLI's one line naming the API. (Prefect's own log lines about the dead API still print
    around it: quieting Prefect's loggers without --debug is the CLI's.)"""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"SINQ_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect"), "SINQ_CONFIG": "",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    started = subprocess.run([sys.executable, "-m", "sinq.cli", "server", "start", "--port", str(port)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    pid = int((home / "server.pid").read_text())
    try:
        config = tmp_path / "sinq.toml"
        config.write_text("[sandbox]\nworkers_per_seed = 1\n[sandbox.limits]\ntimeout_s = 0.5\n"
                          "[run]\nlimit = 24\nbatch_size = 2\naudit_sample = 0\n"
                          f"export_dir = \"{tmp_path / 'exports'}\"\n")
        db = tmp_path / "w.duckdb"
        run_env = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_LOGGING_LEVEL": "WARNING",
                   "PREFECT_CLIENT_MAX_RETRIES": "1"}
        victim = _sinq("run", "--config", str(config), "--db", str(db), "--json", env=run_env)
        deadline = time.monotonic() + 240
        while True:
            assert victim.poll() is None, f"the run ended before the server was stopped: {victim.communicate()}"
            assert time.monotonic() < deadline, "no batch was stored within 240 s"
            try:
                if db.exists() and _query(db, "SELECT count(*) FROM samples")[0][0]:
                    break
            except duckdb.Error:
                pass
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)
        gone = time.monotonic()
        before = _rows_once_readable(db)
        status = "running"
        while status == "running":
            assert time.monotonic() - gone < 180, "the run did not notice its API was gone"
            time.sleep(1)
            try:
                [(status, error)] = _query(db, "SELECT status, error FROM runs")
            except duckdb.Error:
                continue
        assert status == "failed" and "went away" in error and "rerun to resume" in error, error
        after = _rows_once_readable(db)
        assert all(set(rows) <= set(after[table]) for table, rows in before.items()), "stored work was lost"
        try:
            _, stderr = victim.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("the run ended (row failed, message stored) but its process outlives it: Prefect's exit "
                        "drains (events, task threads) against the dead API")
    finally:
        for group in (pid, *([victim.pid] if "victim" in locals() else [])):
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert victim.returncode == 5, stderr[-3000:]
    assert "Traceback" not in stderr, "a traceback without --debug: " + stderr[-3000:]
    own = [line for line in stderr.splitlines() if line.strip() and not line[:2].isdigit()]
    assert any(f"127.0.0.1:{port}" in line for line in own), own[-5:]
