"""Local backend: warm workers inside one bwrap each (own PID, network and mount namespaces; a filesystem view
with only the interpreter and its standard library), forking one confined child per execution."""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.errors import SandboxUnavailable
from sinq.sandbox.pool import FrameReader, WorkerDied, WorkerPool, await_frame, encode_frame

RUNNER = Path(__file__).with_name("runner.py")
RUNNER_IN_SANDBOX = "/sinq/runner.py"
COMPILED_IN_SANDBOX = "/sinq/runner.pyc"
PREFIX_IN_SANDBOX = "/opt/python"


UID_BLOCK = 1 << 14
UID_WORKERS_PER_SEED = 64
UID_LOCKS = Path(tempfile.gettempdir()) / "sinq-uid-blocks"


class UidBlock:
    """A range of uids held (by an flock) for one pool, so that two pools never sweep each other's children."""

    def __init__(self, base: int, handle) -> None:
        self.base = base
        self._handle = handle

    def release(self) -> None:
        self._handle.close()


def claim_uid_block(first_uid: int) -> UidBlock:
    UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
    for block in range(1024):
        handle = open(UID_LOCKS / f"{block}.lock", "w")  # noqa: SIM115 - held for the pool's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return UidBlock(first_uid + block * UID_BLOCK, handle)
    raise RuntimeError(f"all uid blocks under {UID_LOCKS} are held")


def base_interpreter(python: str | None = None) -> tuple[str, str]:
    """The interpreter that runs programs: ``python`` when configured, else the one outside any virtualenv (the
    runner needs only the standard library); and its prefix."""
    if python:
        resolved = shutil.which(python) or python
        probe = subprocess.run([resolved, "-S", "-c", "import sys; print(sys.base_prefix)"], capture_output=True,
                               text=True, check=True, env={"PATH": "/usr/bin:/bin"})
        return os.path.realpath(resolved), os.path.realpath(probe.stdout.strip())
    executable = getattr(sys, "_base_executable", None) or sys.executable
    prefix = os.path.realpath(sys.base_prefix)
    candidate = os.path.realpath(executable)
    if not candidate.startswith(prefix + os.sep) and not candidate.startswith("/usr/"):
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        candidate = os.path.join(prefix, "bin", version)
    return candidate, prefix


_COMPILED: dict[tuple[str, str], str | None] = {}
_COMPILE = "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"


def compiled_runner(python: str) -> str | None:
    """runner.py compiled by the interpreter that runs it, cached by source digest in a private directory; None
    when it cannot be made (then the worker runs the source). A worker started from source carries the compiler's
    leftovers (about 2 MB of heap): pages that every fork copies and every exit tears down."""
    source = RUNNER.read_bytes()
    key = (python, hashlib.sha256(source).hexdigest())
    if key in _COMPILED:
        return _COMPILED[key]
    target = None
    try:
        cache = Path(tempfile.gettempdir()) / f"sinq-runner-{os.getuid()}"
        cache.mkdir(mode=0o700, exist_ok=True)
        info = cache.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
            name = hashlib.sha256(f"{key[0]}\0{key[1]}".encode()).hexdigest()[:32]
            path = cache / f"runner-{name}.pyc"
            if not path.is_file():
                partial = cache / f".{name}.{os.getpid()}.{threading.get_ident()}"
                subprocess.run([python, "-S", "-B", "-c", _COMPILE, str(RUNNER), str(partial)], check=True,
                               capture_output=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
                os.replace(partial, path)
            target = str(path)
    except (OSError, subprocess.SubprocessError):
        target = None
    _COMPILED[key] = target
    return target


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def bwrap_command(config: SandboxConfig, hash_seed: int) -> list[str]:
    """bwrap arguments: read-only /usr and interpreter prefix, fresh /proc, minimal /dev, tmpfs /tmp, no network,
    no home, no project, no warehouse, an empty environment but the hash seed."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bwrap (bubblewrap) is not installed")
    python, prefix = base_interpreter(config.python)
    host_python = python
    cmd = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    env = ["--clearenv", "--setenv", "PYTHONHASHSEED", str(hash_seed), "--setenv", "LANG", "C.UTF-8"]
    env += ["--setenv", "LD_BIND_NOW", "1"]
    cmd += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", "/sinq"]
    if not (prefix == "/usr" or prefix.startswith("/usr/")):
        # the interpreter outside /usr (pyenv, conda) is shown at a neutral path: never the user's home
        cmd += ["--ro-bind", prefix, PREFIX_IN_SANDBOX]
        env += ["--setenv", "LD_LIBRARY_PATH", f"{PREFIX_IN_SANDBOX}/lib"]
        python = PREFIX_IN_SANDBOX + python[len(prefix):]
    cmd += ["--ro-bind", str(RUNNER), RUNNER_IN_SANDBOX]
    compiled = compiled_runner(host_python)
    if compiled is not None:
        cmd += ["--ro-bind", compiled, COMPILED_IN_SANDBOX]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(max(64, config.tmpfs_mb * 2) << 20), "--tmpfs", "/tmp"]
    cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_KILL"]
    cmd += ["--cap-add", "CAP_SYS_CHROOT"]  # setns into each slot's mount namespace (runner: _slot_namespace)
    cmd += [*env, "--chdir", "/tmp"]
    cmd += [python, "-S", "-B", "-u", COMPILED_IN_SANDBOX if compiled else RUNNER_IN_SANDBOX, *runner_args(config)]
    return cmd


def runner_args(config: SandboxConfig, uid_base: int | None = None) -> list[str]:
    args = ["--slots", str(config.slots_per_worker), "--tmpfs-mb", str(config.tmpfs_mb)]
    return [*args, "--uid-base", str(uid_base if uid_base is not None else config.uid_base)]


def bare_command(config: SandboxConfig, hash_seed: int) -> tuple[list[str], dict]:
    """Without bwrap: the same runner, no filesystem view. Only allowed when isolation is not required."""
    python, _ = base_interpreter(config.python)
    env = {"PYTHONHASHSEED": str(hash_seed), "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    tmp = tempfile.mkdtemp(prefix="sinq-bare-")
    return [python, "-S", "-B", "-u", str(RUNNER), "--tmp", tmp, *runner_args(config)], env


class _Spawner:
    """Starts processes from one long-lived thread. bwrap's --die-with-parent (PR_SET_PDEATHSIG) fires when the
    *thread* that forked it exits, so workers must not be born in short-lived pool threads; they then die with the
    orchestrator, even when it is killed."""

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="sinq-spawner", daemon=True)
                self._thread.start()
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put((args, kwargs, reply))
        result = reply.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _serve(self) -> None:
        while True:
            args, kwargs, reply = self._requests.get()
            try:
                reply.put(subprocess.Popen(*args, **kwargs))
            except BaseException as exc:
                reply.put(exc)


SPAWNER = _Spawner()


class ProcessWorker:
    """One runner process spoken to over its stdin/stdout pipes."""

    def __init__(self, cmd: list[str], env: dict | None, extra_info: dict) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        self.proc = SPAWNER.popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                  env=env if env is not None else {}, close_fds=True)
        self._reader = FrameReader()
        try:
            hello = self._read(60.0)
            if hello.get("op") != "hello":
                raise WorkerDied(f"worker did not greet: {hello}")
        except WorkerDied:
            self.close()
            raise
        self.info = {**hello, **extra_info}

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _read(self, timeout_s: float) -> dict:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]

        def pull() -> bool:
            chunk = os.read(fd, 1 << 20)
            self._reader.feed(chunk)
            return bool(chunk)

        return await_frame(self._reader, fd, pull, timeout_s,
                           lambda: f"worker exited (code {self.proc.poll()}): {self._stderr_tail()}")

    def request(self, message: dict, timeout_s: float) -> dict:
        try:
            self.proc.stdin.write(encode_frame(message))  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"worker pipe closed: {exc}; {self._stderr_tail()}") from exc
        return self._read(timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(encode_frame({"op": "exit"}))  # type: ignore[union-attr]
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def isolation_problems(info: dict) -> list[str]:
    """What the worker reports missing from full isolation."""
    problems = []
    if info.get("filesystem") != "bwrap":
        problems.append("no filesystem view (bwrap missing)")
    if info.get("seccomp") != "on":
        problems.append(f"seccomp {info.get('seccomp')}")
    if info.get("network") not in ("namespace", "bwrap"):
        problems.append(f"network {info.get('network')}")
    if info.get("uid") == 0 and not info.get("per_slot_uids"):
        problems.append("children would run as root")
    return problems


class LocalBackend(WorkerPool):
    """The embedded default backend."""

    name = "local"

    def __init__(self, config: SandboxConfig | None = None, workers_per_seed: int | None = None) -> None:
        config = config or SandboxConfig()
        if bwrap_path() is None and config.require_isolation:
            raise SandboxUnavailable("bwrap is required (require_isolation / SINQ_REQUIRE_SANDBOX) but not installed")
        super().__init__(config, self._start, "local", workers_per_seed)
        self._uid_block: UidBlock | None = claim_uid_block(config.uid_base) if os.getuid() == 0 else None

    def close(self) -> None:
        super().close()
        if self._uid_block is not None:
            self._uid_block.release()
            self._uid_block = None

    def _start(self, seed: int, index: int) -> ProcessWorker:
        config = self.config
        block_base = self._uid_block.base if self._uid_block is not None else config.uid_base
        group = config.hash_seeds.index(seed) if seed in config.hash_seeds else 2
        offset = (group * UID_WORKERS_PER_SEED + index % UID_WORKERS_PER_SEED) * config.slots_per_worker
        local = config.model_copy(update={"uid_base": block_base + offset})
        if bwrap_path() is not None:
            worker = ProcessWorker(bwrap_command(local, seed), {}, {"filesystem": "bwrap"})
            if worker.info.get("network") == "inherited":
                worker.info["network"] = "bwrap"
        else:
            cmd, env = bare_command(local, seed)
            worker = ProcessWorker(cmd, env, {"filesystem": "host"})
        if config.require_isolation and isolation_problems(worker.info):
            problems = isolation_problems(worker.info)
            worker.close()
            raise SandboxUnavailable("sandbox isolation incomplete: " + "; ".join(problems))
        return worker
