"""Every error is one line with its class's exit code (issue 12, findings 8 and 9): `sinq` run as a user runs it.

Nothing here needs a Prefect server except the status test, which starts its own on a free port: every other run
gets PREFECT_API_URL pointing at a port nobody listens on, so a check that came too late would answer "Prefect
unreachable" (exit 5) instead of its own line, and could never start or touch anyone's server.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sinq(*args: str, home: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "SINQ_DEBUG"}
    environment.update({"SINQ_CONFIG": "", "SINQ_HOME": str(home), "PREFECT_HOME": str(home / "prefect"),
                        "PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api", **env})
    return subprocess.run([sys.executable, "-m", "sinq.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=environment, cwd=home)


def one_line(done: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The error is `error: …` (and at most a hint line), the exit code is the class's, no traceback."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == code, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), done.stderr
    text = " ".join(lines)
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def config(home: Path, text: str | bytes) -> str:
    path = home / "sinq.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


# ---- finding 8: inputs checked before a flow run exists


def test_run_refuses_an_unknown_source_before_any_run(home: Path) -> None:
    db = home / "x.duckdb"
    one_line(sinq("run", "--source", "nosuch:x", "--db", str(db), home=home), 2, "unknown source 'nosuch:x'")
    assert not db.exists()


def test_run_refuses_a_source_file_that_is_missing(home: Path) -> None:
    db = home / "x.duckdb"
    one_line(sinq("run", "--source", f"mbpp:{home / 'nope.jsonl'}", "--db", str(db), home=home), 2, "nope.jsonl")
    assert not db.exists()


def test_run_refuses_a_database_in_a_folder_that_does_not_exist(home: Path) -> None:
    done = sinq("run", "--db", "/nonexistent/dir/x.duckdb", home=home)
    one_line(done, 4, "/nonexistent/dir", "does not exist")
    assert not Path("/nonexistent/dir").exists()


def test_run_refuses_a_database_file_that_is_not_duckdb(home: Path) -> None:
    db = home / "x.duckdb"
    db.write_bytes(b"not a database at all\n" * 200)
    before = db.read_bytes()
    one_line(sinq("run", "--db", str(db), home=home), 4, str(db))
    assert db.read_bytes() == before


def test_run_refuses_docker_without_an_engine(home: Path) -> None:
    db = home / "x.duckdb"
    dead = f"unix://{home / 'dead.sock'}"
    one_line(sinq("run", "--backend", "docker", "--db", str(db), home=home, DOCKER_HOST=dead), 3, "Docker")
    assert not db.exists()


def test_cron_is_checked_with_the_config(home: Path) -> None:
    db = home / "x.duckdb"
    done = sinq("run", "--db", str(db), "--config", config(home, '[run]\ncron = "not a cron"\n'), home=home)
    one_line(done, 2, "run.cron", "not a cron")
    assert not db.exists()
    done = sinq("run", "--db", str(db), "--config", config(home, '[run]\nfinetune_cron = "weekly"\n'), home=home)
    one_line(done, 2, "run.finetune_cron", "not a cron")


def test_the_weekly_finetune_can_be_left_unscheduled_but_the_nightly_cannot() -> None:
    from pydantic import ValidationError

    from sinq.flows.config import RunConfig

    assert RunConfig(finetune_cron="").finetune_cron is None and RunConfig().finetune_cron == "0 4 * * 0"
    with pytest.raises(ValidationError, match="not a cron"):
        RunConfig(cron="")


def test_a_config_that_is_not_utf8_is_one_line_naming_it(home: Path) -> None:
    path = config(home, b'[run]\nsource = "caf\xe9"\n')
    one_line(sinq("sandbox", "info", "--config", path, home=home), 2, path, "UTF-8")


def test_a_config_that_is_not_toml_is_one_line_naming_it(home: Path) -> None:
    path = config(home, "this is = = not toml\n")
    one_line(sinq("models", "list", "--config", path, "--db", str(home / "x.duckdb"), home=home), 2, path, "TOML")
    assert not (home / "x.duckdb").exists()


@pytest.mark.parametrize(("flag", "value", "needle"), [("--compare", "wat", "compare"),
                                                        ("--timeout", "0", "timeout_s")])
def test_verify_refuses_bad_flags_in_one_line(home: Path, flag: str, value: str, needle: str) -> None:
    pairs = home / "p.jsonl"
    pairs.write_text('{"id": "a", "original": "def f(x):\\n    return x\\n", "variant": "def f(x):\\n    return 1\\n",'
                     ' "entry_point": "f", "input": {"x": 1}}\n')
    one_line(sinq("verify", str(pairs), flag, value, home=home), 2, needle)


@pytest.mark.parametrize("query", ["", "   ", "-- c"])
def test_sql_without_a_statement_is_one_line(home: Path, query: str) -> None:
    from sinq.warehouse.store import Warehouse

    db = home / "w.duckdb"
    Warehouse(db).store({})
    done = sinq("sql", query, "--db", str(db), home=home)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "No such option" not in done.stderr and "statement" in done.stderr.lower(), done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) <= 2, done.stderr


def test_debug_shows_the_traceback_the_plain_run_leaves_out(home: Path) -> None:
    plain = sinq("run", "--source", "nosuch:x", home=home)
    one_line(plain, 2, "unknown source")
    for debug in (sinq("--debug", "run", "--source", "nosuch:x", home=home),
                  sinq("run", "--source", "nosuch:x", home=home, SINQ_DEBUG="1")):
        assert debug.returncode == 2
        assert "Traceback" in debug.stderr and "SourceError" in debug.stderr
        assert "error: unknown source" in debug.stderr


def test_an_unexpected_exception_is_one_line_and_exit_70(home: Path) -> None:
    folder = home / "a-folder"
    folder.mkdir()
    done = sinq("sources", "validate", "--source", f"file:{folder}", home=home)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode in (2, 70) and "Traceback" not in done.stderr, done.stderr
    assert len(lines) <= 2 and lines[0].startswith(("error: ", "internal error: ")), done.stderr
    if lines[0].startswith("internal error: "):
        assert done.returncode == 70 and "--debug" in lines[0]
    assert "Traceback" in sinq("--debug", "sources", "validate", "--source", f"file:{folder}", home=home).stderr


def test_prefect_unreachable_has_its_own_exit_code(home: Path) -> None:
    one_line(sinq("deploy", home=home), 5, "does not answer")


@pytest.fixture
def failing_api():
    """A real HTTP server that answers /health and fails everything else with a 500 (a server whose database
    broke): its API URL."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            ok = self.path.rstrip("/").endswith("/health")
            body = b"true" if ok else b'{"detail": "database is broken"}'
            self.send_response(200 if ok else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("command", [["deploy"], ["run", "--limit", "1", "--db", "x.duckdb"]])
def test_an_api_that_answers_health_but_fails_is_prefect_unavailable(home: Path, failing_api: str,
                                                                       command: list[str]) -> None:
    one_line(sinq(*command, home=home, PREFECT_API_URL=failing_api), 5, failing_api, "500")
    assert not (home / "x.duckdb").exists()


# ---- finding 9: typos are refused with the closest known key


@pytest.mark.parametrize(("text", "needle"), [
    ("[run]\nlimt = 3\n", "unknown key [run] limt — did you mean `limit`?"),
    ('[sandbox]\nbakcend = "docker"\n', "unknown key [sandbox] bakcend — did you mean `backend`?"),
    ('[warehouse]\npth = "elsewhere.duckdb"\n', "unknown key [warehouse] pth — did you mean `path`?"),
    ("[sandbox.limits]\ntimeot_s = 3\n", "unknown key [sandbox.limits] timeot_s — did you mean `timeout_s`?"),
    ("[runn]\nlimit = 3\n", "unknown section [runn] — did you mean `run`?"),
])
def test_unknown_config_keys_are_refused_with_the_closest_known_one(home: Path, text: str, needle: str) -> None:
    db = home / "x.duckdb"
    one_line(sinq("run", "--db", str(db), "--config", config(home, text), home=home), 2, needle)
    assert not db.exists() and not (home / "elsewhere.duckdb").exists() and not (home / "sinq.duckdb").exists()


@pytest.mark.parametrize(("flag", "needle"), [
    ("run.limt=3", "did you mean `limit`?"),
    ("run.slot_wait_s=0", "slot_wait_s"),
    ("sandbox.limits.timeout_s=1e7", "timeout_s"),
    ("limit", "section.key=value"),
    ("run.limit.x=1", "is a value, not a section"),
])
def test_set_overrides_are_checked_like_the_config_file(home: Path, flag: str, needle: str) -> None:
    db = home / "x.duckdb"
    one_line(sinq("run", "--db", str(db), "--set", flag, home=home), 2, needle)
    assert not db.exists()


def test_set_reaches_every_setting_with_toml_values(monkeypatch) -> None:
    monkeypatch.setenv("SINQ_CONFIG", "")
    from sinq.cli import _run_settings

    settings = _run_settings(None, None, 7, None, None, None, None, None,
                             ["run.slot_wait_s=60", "sandbox.limits.timeout_s=2.5", "run.source=mbpp",
                              "run.limit=3", 'warehouse.path="elsewhere.duckdb"', "quality.dedup.near=false"])
    assert settings.run.slot_wait_s == 60 and settings.sandbox.limits.timeout_s == 2.5
    assert settings.run.source == "mbpp" and str(settings.warehouse.path) == "elsewhere.duckdb"
    assert settings.quality.dedup.near is False
    assert settings.run.limit == 7, "a named flag (--limit) wins over --set"


def test_a_negative_lock_timeout_is_refused(home: Path) -> None:
    path = config(home, "[warehouse]\nlock_timeout_s = -1\n")
    one_line(sinq("models", "list", "--config", path, home=home), 2, "lock_timeout_s", "greater than 0")


def test_every_config_model_forbids_extra_keys() -> None:
    from pydantic import BaseModel

    from sinq.settings import Settings

    seen: list[type[BaseModel]] = []

    def walk(model: type[BaseModel]) -> None:
        seen.append(model)
        for field in model.model_fields.values():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                walk(field.annotation)

    walk(Settings)
    assert len(seen) > 15
    assert [m.__name__ for m in seen if m.model_config.get("extra") != "forbid"] == []


# ---- the small things


def test_verify_says_a_program_that_is_not_a_string_is_not_a_string(home: Path) -> None:
    pairs = home / "p.jsonl"
    pairs.write_text('{"id": "a", "original": 123, "variant": "def f(x):\\n    return 1\\n", "entry_point": "f", '
                     '"input": {"x": 1}}\n')
    for extra in ([], ["--db", str(home / "v.duckdb")]):  # stored too: such a line never reaches the records
        done = sinq("verify", str(pairs), "--json", *extra, home=home)
        assert done.returncode == 0, done.stderr
        assert '"original_no_program"' in done.stdout and "not a string (got int)" in done.stdout, done.stdout


def test_deploy_help_keeps_its_brackets(home: Path) -> None:
    done = sinq("deploy", "--help", home=home, COLUMNS="200")
    assert done.returncode == 0 and "from [run]" in done.stdout, done.stdout


def test_server_status_reports_the_port_it_was_started_on(home: Path) -> None:
    port = _free_port()
    env = {"PREFECT_API_URL": ""}
    started = sinq("server", "start", "--port", str(port), home=home, timeout=240, **env)
    pid_file = home / "server.pid"
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        assert f":{port}" in started.stdout
        status = sinq("server", "status", "--json", home=home, **env)
        assert status.returncode == 0, status.stderr
        import json

        info = json.loads(status.stdout)
        assert info["api_url"] == f"http://127.0.0.1:{port}/api" and info["healthy"] is True
        # a run uses that server, and no temporary one beside it (Prefect read its settings while the config's
        # cron was validated, before the API was known)
        ran = sinq("run", "--limit", "2", "--db", str(home / "w.duckdb"), home=home, timeout=300, **env)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "Starting temporary server" not in ran.stderr + ran.stdout, ran.stderr[-3000:]
        import httpx

        flow_run = re.search(r"/runs/flow-run/([0-9a-f-]{36})", ran.stdout + ran.stderr)
        assert flow_run, ran.stdout[-2000:]
        stored = httpx.get(f"http://127.0.0.1:{port}/api/flow_runs/{flow_run.group(1)}", timeout=10)
        assert stored.status_code == 200 and stored.json()["state"]["type"] == "COMPLETED", stored.text[:500]
    finally:
        if pid_file.exists():
            pid = int(pid_file.read_text())
            sinq("server", "stop", home=home, **env)
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.2)
