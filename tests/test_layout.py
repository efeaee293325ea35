"""One installed namespace and imports that run one way (issue 16).

The repository keeps the design card's folders (flows/, tasks/, sandbox/, ...); pyproject maps each onto a room of
`sinq` (`sandbox/` installs as `sinq.sandbox`). These tests keep that true: the wheel holds `sinq` and nothing
else, a non-editable install runs, and no module imports a room above its own.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("game", "sandbox", "sources", "warehouse", "agents", "training", "evals", "tasks", "flows")
BELOW: dict[str, set[str]] = {
    "game": set(),  # the pure rules: no I/O, no Prefect, nothing of sinq
    "sandbox": {"game"},
    "sources": {"game"},
    "warehouse": {"game", "sandbox", "sources"},  # stores the records the sandbox and the sources make
    "agents": {"game", "sandbox", "sources", "warehouse"},
    "training": {"game", "sandbox", "sources", "warehouse", "agents"},  # trains the agents' models
    "evals": {"game", "sandbox", "sources", "warehouse", "agents", "training"},  # measures the agents' models
    "tasks": {"game", "sandbox", "sources", "warehouse", "agents", "training", "evals", "settings"},
    "flows": {"game", "sandbox", "sources", "warehouse", "agents", "training", "evals", "tasks", "settings"},
    "face": {*ROOMS, "settings", "face"},
}
"""What each room may import besides itself: face (sinq/cli.py, ...) → flows → tasks → evals → agents/training →
sandbox/warehouse/sources → game. ``settings`` assembles the rooms' config models (with game's pure helpers) for tasks,
flows and the face."""


def room_of(module: str) -> str | None:
    """The room an absolute import names: ``sinq.tasks.stages`` → tasks; ``sinq`` itself (the version) → None."""
    parts = module.split(".")
    if parts[0] != "sinq" or len(parts) == 1:
        return None
    if parts[1] in ROOMS:
        return parts[1]
    return "settings" if parts[1] == "settings" else "face"


def _imports(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):  # function-level and TYPE_CHECKING imports count too
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def violations(where: str, me: str, source: str, config_module: bool = False) -> list[str]:
    """Each import of ``source`` (a module of room ``me``) that breaks the rules, as ``where:line: why``."""
    bad = []
    for line, module in _imports(source):
        top = module.split(".")[0]
        if top in ROOMS:
            bad.append(f"{where}:{line}: imports {module!r} by its folder name (use sinq.{module})")
            continue
        room = room_of(module)
        if room is None or room == me:
            continue
        if config_module and not (module == "sinq.game.errors" or (module.endswith(".config")
                                                                    and room in BELOW[me])):
            bad.append(f"{where}:{line}: a config model imports {module} (config modules are plain pydantic, "
                       "composed only of the config models of rooms below)")
        elif me == "settings" and not (module.endswith(".config") or room == "game"):
            bad.append(f"{where}:{line}: settings assembles config models (and the pure rules) only, not {module}")
        elif me != "settings" and room not in BELOW[me]:
            bad.append(f"{where}:{line}: {me} imports {module} ({room} is not below {me})")
    return bad


def _modules() -> list[tuple[Path, str]]:
    found = [(path, room) for room in ROOMS for path in sorted((ROOT / room).glob("*.py"))]
    for path in sorted((ROOT / "sinq").glob("*.py")):
        found.append((path, {"settings.py": "settings", "__init__.py": "version"}.get(path.name, "face")))
    return found


def test_imports_run_one_way() -> None:
    bad = []
    for path, room in _modules():
        where = str(path.relative_to(ROOT))
        source = path.read_text()
        if room == "version":
            bad += [f"{where}:{line}: sinq/__init__.py imports {module}" for line, module in _imports(source)
                    if module.startswith("sinq")]
            continue
        bad += violations(where, room, source, config_module=path.name == "config.py" and room in ROOMS)
    assert not bad, "imports that run upward:\n" + "\n".join(bad)


def test_every_room_is_walked_and_the_rules_can_fail() -> None:
    """The check above sees every room, and it flags what it should (so a pass means something)."""
    walked = {room for _, room in _modules()}
    assert walked == {*ROOMS, "settings", "face", "version"}
    assert violations("x.py", "game", "from sinq.sandbox.verify import Pair\n")
    assert violations("x.py", "agents", "def f():\n    from sinq.tasks import stages\n")
    assert violations("x.py", "sandbox", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                         "    from sinq.settings import Settings\n")
    assert violations("x.py", "tasks", "from sandbox.verify import Pair\n")
    assert violations("x.py", "settings", "from sinq.tasks.stages import x\n")
    assert violations("x.py", "sandbox", "from sinq.game.inputs import x\n", config_module=True)
    assert violations("x.py", "agents", "from sinq.evals.config import EvalConfig\n", config_module=True)
    assert violations("x.py", "evals", "from sinq.agents.backends import make\n", config_module=True)
    assert not violations("x.py", "evals", "from sinq.agents.config import AgentConfig\n", config_module=True)
    assert not violations("x.py", "flows", "from sinq.tasks import nightly\nfrom sinq.settings import Settings\n")
    assert not violations("x.py", "training", "from sinq.agents.tiny_model import make\nfrom sinq import x\n")


def test_sql_lives_behind_the_warehouse() -> None:
    """Only warehouse/ talks SQL (named queries returning dicts); every other room asks it by name."""
    import re

    talking = re.compile(r"\.execute\(|\bduckdb\.connect\(")
    bad = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
           for path, room in _modules() if room != "warehouse"
           for number, line in enumerate(path.read_text().splitlines(), 1) if talking.search(line)]
    assert not bad, "SQL outside warehouse/:\n" + "\n".join(bad)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from the tracked files only, in a copy: no stale build/ folder and no untracked file can hide in it."""
    import shutil

    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = out.glob("sinq-*.whl")
    return built


def test_the_wheel_puts_only_sinq_on_the_path(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top == {"sinq"}, f"top-level names besides sinq: {sorted(top - {'sinq'})}"
    for room in ROOMS:
        assert f"sinq/{room}/__init__.py" in names, f"the {room} room is missing from the wheel"
    assert {"sinq/sandbox/runner.py", "sinq/sandbox/docker/Dockerfile", "sinq/cli.py"} <= set(names)
    [top_level] = [n for n in names if n.endswith(".dist-info/top_level.txt")] or [None]
    if top_level:
        assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["sinq"]


def test_a_non_editable_install_runs_help_and_verify(wheel: Path, tmp_path: Path, local_backend) -> None:
    """The wheel installed into its own folder, run from elsewhere: the repository's folders are out of reach
    (``-P``: no cwd on sys.path), so any import by a folder name, or any file the wheel forgot, fails here."""
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "SINQ_CONFIG": "", "SINQ_HOME": str(tmp_path / "home")}

    def sinq(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-P", "-c", "from sinq.cli import app; app()", *args], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)

    where = subprocess.run([sys.executable, "-P", "-c", "import sinq.sandbox.local as m, sinq.flows.nightly as n; "
                            "print(m.__file__); print(n.__file__)"], cwd=work, env=env, capture_output=True,
                           text=True, timeout=300)
    assert where.returncode == 0, where.stderr[-3000:]
    assert all(line.startswith(str(target)) for line in where.stdout.split()), where.stdout
    shown = sinq("--help")
    assert shown.returncode == 0 and "verify" in shown.stdout and "run" in shown.stdout, shown.stderr
    pairs = work / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "a", "original": "def f(x):\n    return x + 1\n",
                                 "variant": "def f(x):\n    return x + 2\n", "entry_point": "f",
                                 "input": {"x": 1}}) + "\n")
    verified = sinq("verify", str(pairs), "--json")
    assert verified.returncode == 0, verified.stderr[-3000:]
    [line] = [json.loads(row) for row in verified.stdout.splitlines() if row.strip()]
    assert line["id"] == "a" and line["verdict"] == "diverges", line


ABOVE_THE_CHECKOUT = ("parents[" + "2]", '"' + 'shared"', ".." + "/shared")
"""How a test reaches beside the checkout (spelt in pieces so that this guard does not match itself)."""


def test_the_tests_read_only_what_the_repository_holds() -> None:
    """A user's clone has nothing beside it: no test may reach above the checkout (vendor the data under tests/data,
    with its licence note, or make it in the test)."""
    above = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if any(needle in line for needle in ABOVE_THE_CHECKOUT):
                above.append(f"{path.name}:{lineno}")
    assert above == []
    assert (ROOT / "tests" / "data" / "NOTICE.md").read_text().count("CC BY 4.0") == 1
