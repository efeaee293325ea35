"""A local Prefect server for people without one: started in the background (SQLite under PREFECT_HOME, analytics
off) so that runs stay visible in the UI after the command that made them has ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sinq.game.errors import SinqError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 4200


class PrefectUnavailable(SinqError, RuntimeError):
    """No Prefect API answers (or it answers with errors): the control plane, not the data; exit 5."""

    exit_code = 5


def state_dir() -> Path:
    path = Path(os.environ.get("SINQ_HOME", "~/.sinq")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_api(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    return f"http://{host}:{port}/api"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def api_problem(api_url: str, timeout: float = 10.0) -> str | None:
    """What is wrong with an API whose /health answers, or None: Prefect's client asks /admin/version first, and a
    server whose database is broken answers /health but fails there (a 500), which Prefect reports only as
    "Failed to reach API" deep in a flow run."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/admin/version", timeout=timeout)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.status_code == 200 else f"/admin/version answers {response.status_code}"


def ui_url(api_url: str) -> str:
    return api_url.rstrip("/").removesuffix("/api")


def _pid() -> int | None:
    try:
        pid = int((state_dir() / "server.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _started_at() -> tuple[str, int]:
    """Where the server sinq started listens (recorded at start), so that status and runs find it on any port;
    the defaults when none is recorded or it is no longer running."""
    try:
        host, _, port = (state_dir() / "server.address").read_text().strip().rpartition(":")
        if _pid() is not None and host:
            return host, int(port)
    except (OSError, ValueError):
        pass
    return DEFAULT_HOST, DEFAULT_PORT


def start(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, wait_s: float = 120.0) -> dict:
    """Start `prefect server start` detached unless one already answers; returns status()."""
    api = local_api(host, port)
    if healthy(api):
        return status(host, port)
    log = (state_dir() / "server.log").open("ab")
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_API_URL": api}
    env.pop("PREFECT_API_URL", None)
    prefect = Path(sys.executable).parent / "prefect"
    command = [str(prefect)] if prefect.exists() else [sys.executable, "-m", "prefect"]
    process = subprocess.Popen([*command, "server", "start", "--host", host, "--port", str(port)], stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    (state_dir() / "server.pid").write_text(str(process.pid))
    (state_dir() / "server.address").write_text(f"{host}:{port}")
    deadline = time.monotonic() + wait_s
    while not healthy(api):
        if process.poll() is not None:
            raise PrefectUnavailable(f"prefect server exited {process.returncode}",
                                     hint=f"see {state_dir() / 'server.log'}")
        if time.monotonic() > deadline:
            raise PrefectUnavailable(f"prefect server did not answer within {wait_s:.0f} s",
                                     hint=f"see {state_dir() / 'server.log'}")
        time.sleep(0.5)
    return status(host, port)


def stop() -> bool:
    pid = _pid()
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    (state_dir() / "server.pid").unlink(missing_ok=True)
    (state_dir() / "server.address").unlink(missing_ok=True)
    return True


def status(host: str | None = None, port: int | None = None) -> dict:
    """The server at host:port; by default the one sinq started (on the port it was started on)."""
    started_host, started_port = _started_at()
    api = local_api(host or started_host, port or started_port)
    return {"api_url": api, "ui_url": ui_url(api), "healthy": healthy(api), "pid": _pid(),
            "log": str(state_dir() / "server.log")}


def ensure_api(start_if_missing: bool = True) -> str:
    """PREFECT_API_URL if set (it must answer), else the local server, started if needed; exported for Prefect."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        if not healthy(configured):
            raise PrefectUnavailable(f"PREFECT_API_URL={configured} does not answer",
                                     hint="start that server, or unset PREFECT_API_URL to use a local one")
        _raise_for_api(configured)
        return configured
    api = local_api(*_started_at())
    if not healthy(api):
        if not start_if_missing:
            raise PrefectUnavailable(f"no Prefect server at {api}", hint="start one: sinq server start")
        start()
    _raise_for_api(api)
    os.environ["PREFECT_API_URL"] = api
    _refresh_prefect_settings()
    return api


def _refresh_prefect_settings() -> None:
    """Prefect reads its settings once, when it is first imported, and keeps them in a global context: a process
    that imported it before the API was known (e.g. to validate a cron string in the config) would otherwise run
    its flow on a *temporary* server beside the real one. Rebuild that context from the environment now."""
    import sys

    context = sys.modules.get("prefect.context")
    if context is None:
        return
    context.GLOBAL_SETTINGS_CONTEXT = context.root_settings_context()


def _raise_for_api(api: str) -> None:
    problem = api_problem(api)
    if problem is not None:
        raise PrefectUnavailable(f"the Prefect API at {api} answers /health but fails ({problem})",
                                 hint=f"restart the server; its log: {state_dir() / 'server.log'}")
