"""Docker backend (production): a pool of long-lived locked-down containers, each running the same runner.

Containers run with no network, a read-only root, tmpfs /tmp, memory = memory-swap, a pids limit, every
capability dropped, no-new-privileges and a non-root uid. Batches go in over the attached stdin/stdout, never one
container per execution. A container that dies is replaced and its batch re-run (WorkerPool's rule).
"""

from __future__ import annotations

import os
import socket
import struct

from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.errors import SandboxUnavailable
from sinq.sandbox.image import ENTRYPOINT, image_runner_sha, runner_sha
from sinq.sandbox.pool import FrameReader, WorkerDied, WorkerPool, await_frame, encode_frame

LABEL = "sinq.sandbox"


def docker_client(config: SandboxConfig):
    """A Docker client, or SandboxUnavailable saying why not."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a core dependency
        raise SandboxUnavailable(f"the docker package is missing: {exc}") from exc
    try:
        client = (docker.DockerClient(base_url=config.docker.base_url) if config.docker.base_url
                  else docker.from_env())
        client.ping()
    except Exception as exc:
        raise SandboxUnavailable(f"no Docker engine reachable: {exc}") from exc
    return client


class ContainerWorker:
    """One container running the runner, spoken to through its attached stdin/stdout (multiplexed stream)."""

    def __init__(self, client, config: SandboxConfig, seed: int, image_id: str) -> None:
        settings = config.docker
        self.container = client.containers.create(
            image_id,
            command=["--slots", "1", "--tmpfs-mb", "0", "--tmp", "/tmp/sinq-work"],
            entrypoint=ENTRYPOINT,
            stdin_open=True,
            tty=False,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"size={settings.tmpfs_mb}m,mode=1777"},
            mem_limit=f"{settings.memory_mb}m",
            memswap_limit=f"{settings.memory_mb}m",
            pids_limit=settings.pids_limit,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user=f"{settings.uid}:{settings.uid}",
            environment={"PYTHONHASHSEED": str(seed), "LANG": "C.UTF-8"},
            labels={LABEL: "1"},
            working_dir="/tmp",
            hostname="sandbox",
        )
        try:
            raw = client.api.attach_socket(self.container.id, params={"stdin": 1, "stdout": 1, "stream": 1})
            self._raw = raw  # keeps the HTTP response, and so the socket, alive
            self._sock: socket.socket = getattr(raw, "_sock", raw)
            self._sock.setblocking(True)
            self.container.start()
            self._pending = b""
            self._reader = FrameReader()
            hello = self._read(60.0)
        except Exception:
            self.close()
            raise
        self.info = {**hello, "filesystem": "container", "network": "none", "runtime": f"docker {image_id[:19]}",
                     "image": image_id, "container": self.container.short_id}

    def _read(self, timeout_s: float) -> dict:
        def pull() -> bool:
            chunk = self._sock.recv(1 << 20)
            self._demux(chunk)
            return bool(chunk)

        return await_frame(self._reader, self._sock, pull, timeout_s,
                           lambda: f"container {self.container.short_id} closed its stream: {self._logs()}")

    def _demux(self, chunk: bytes) -> None:
        """Docker's stream framing: 8-byte header (stream id, 3 zero bytes, big-endian size) per payload."""
        data = self._pending + chunk
        offset = 0
        while len(data) - offset >= 8:
            stream, size = data[offset], struct.unpack(">I", data[offset + 4 : offset + 8])[0]
            if len(data) - offset - 8 < size:
                break
            if stream == 1:
                self._reader.feed(data[offset + 8 : offset + 8 + size])
            offset += 8 + size
        self._pending = data[offset:]

    def _logs(self) -> str:
        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
            return f"state={state.get('Status')} oom={state.get('OOMKilled')} exit={state.get('ExitCode')}"
        except Exception:
            return "container gone"

    def request(self, message: dict, timeout_s: float) -> dict:
        try:
            self._sock.sendall(encode_frame(message))
        except OSError as exc:
            raise WorkerDied(f"container stdin closed: {exc}") from exc
        return self._read(timeout_s)

    def close(self) -> None:
        for closable in (getattr(self, "_sock", None), getattr(self, "_raw", None)):
            try:
                if closable is not None:
                    closable.close()
            except Exception:
                pass
        try:
            self.container.remove(force=True)
        except Exception:
            pass


class DockerBackend(WorkerPool):
    name = "docker"

    def __init__(self, config: SandboxConfig | None = None, workers_per_seed: int | None = None) -> None:
        config = config or SandboxConfig(backend="docker")
        self.client = docker_client(config)
        try:
            image = self.client.images.get(config.docker.image)
        except Exception as exc:
            raise SandboxUnavailable(
                f"sandbox image {config.docker.image!r} not found: run `sinq sandbox build-image` "
                f"(add --offline without a registry)") from exc
        if image_runner_sha(image) != runner_sha():
            raise SandboxUnavailable(f"image {config.docker.image!r} carries an older runner: rebuild it with "
                                     "`sinq sandbox build-image`")
        self.image_id = image.id
        containers = workers_per_seed or config.docker.containers_per_seed or (os.cpu_count() or 1)
        super().__init__(config, self._start, "docker", containers)

    def _start(self, seed: int, index: int) -> ContainerWorker:
        return ContainerWorker(self.client, self.config, seed, self.image_id)
