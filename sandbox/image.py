"""The Docker sandbox image: built from the Dockerfile where a registry is reachable, or offline from Debian
packages (mmdebstrap with the host's apt sources, then ``docker import``). Both carry the same stdlib-only runner."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from sinq.game.errors import SinqError
from sinq.sandbox.local import RUNNER

DOCKERFILE_DIR = Path(__file__).with_name("docker")
RUNNER_PATH_IN_IMAGE = "/opt/sinq/runner.py"
ENTRYPOINT = ["python3", "-S", "-B", "-u", RUNNER_PATH_IN_IMAGE]


class ImageBuildError(SinqError, RuntimeError):

    exit_code = 3
    pass


def runner_sha() -> str:
    """Images are tagged with the runner they carry, so a stale image is detected instead of silently used."""
    return hashlib.sha256(RUNNER.read_bytes()).hexdigest()[:16]


def _changes() -> list[str]:
    return [
        "USER 65534:65534",
        "WORKDIR /tmp",
        "ENV PATH=/usr/bin:/bin",
        f"ENV SINQ_RUNNER_SHA={runner_sha()}",
        f"ENTRYPOINT {json.dumps(ENTRYPOINT)}",
    ]


def build_offline(client, tag: str, suite: str = "bookworm", log=print) -> str:
    """Debian rootfs with python3 from the host's apt sources; no registry involved."""
    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise ImageBuildError("mmdebstrap is not installed (apt-get install mmdebstrap)")
    with tempfile.TemporaryDirectory(prefix="sinq-image-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        cmd = [tool, "--variant=minbase", "--include=python3", "--mode=root",
               "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
               "--dpkgopt=path-exclude=/usr/share/locale/*", suite, str(rootfs)]
        log(f"building a {suite} rootfs with python3: {' '.join(cmd)}")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise ImageBuildError(f"mmdebstrap failed ({done.returncode}): {done.stderr[-2000:]}")
        with tarfile.open(rootfs, "a") as tar:
            data = RUNNER.read_bytes()
            for directory in ("./opt/sinq",):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            info = tarfile.TarInfo("." + RUNNER_PATH_IN_IMAGE)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        repository, _, version = tag.partition(":")
        log(f"importing {rootfs.stat().st_size >> 20} MiB as {tag}")
        client.api.import_image_from_file(str(rootfs), repository=repository, tag=version or "latest",
                                          changes=_changes())
    return client.images.get(tag).id


def build_from_dockerfile(client, tag: str, log=print) -> str:
    with tempfile.TemporaryDirectory(prefix="sinq-image-") as tmp:
        shutil.copy(DOCKERFILE_DIR / "Dockerfile", Path(tmp) / "Dockerfile")
        shutil.copy(RUNNER, Path(tmp) / "runner.py")
        log(f"docker build {tag}")
        image, _ = client.images.build(path=tmp, tag=tag, buildargs={"RUNNER_SHA": runner_sha()}, rm=True)
    return image.id


def image_runner_sha(image) -> str | None:
    for item in image.attrs.get("Config", {}).get("Env") or []:
        if item.startswith("SINQ_RUNNER_SHA="):
            return item.split("=", 1)[1]
    return None
