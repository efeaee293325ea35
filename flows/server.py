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

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 4200


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


def ui_url(api_url: str) -> str:
    return api_url.rstrip("/").removesuffix("/api")


def _pid() -> int | None:
    try:
        pid = int((state_dir() / "server.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


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
    deadline = time.monotonic() + wait_s
    while not healthy(api):
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited {process.returncode}; see {state_dir() / 'server.log'}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"prefect server did not answer within {wait_s:.0f} s; see {state_dir()}/server.log")
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
    return True


def status(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> dict:
    api = local_api(host, port)
    return {"api_url": api, "ui_url": ui_url(api), "healthy": healthy(api), "pid": _pid(),
            "log": str(state_dir() / "server.log")}


def ensure_api(start_if_missing: bool = True) -> str:
    """PREFECT_API_URL if set (it must answer), else the local server, started if needed; exported for Prefect."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        if not healthy(configured):
            raise RuntimeError(f"PREFECT_API_URL={configured} does not answer")
        return configured
    api = local_api()
    if not healthy(api):
        if not start_if_missing:
            raise RuntimeError(f"no Prefect server at {api} (sinq server start)")
        start()
    os.environ["PREFECT_API_URL"] = api
    return api
