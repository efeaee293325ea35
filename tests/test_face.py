"""The face is whole (issue 16): `python -m sinq` is the `sinq` command, every command and option says what it is
for, and the README's command list is the app's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sinq.commands_doc import END, START, app_command, is_group, table, walk

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_and_option_has_help() -> None:
    missing = []
    commands = walk(app_command())
    assert len(commands) > 25, "the walk saw too few commands to mean anything"
    for path, command in commands:
        name = "sinq " + " ".join(path)
        if not (command.help or command.short_help or "").strip():
            missing.append(f"{name}: no help text")
        if is_group(command):
            continue
        for param in command.params:
            if param.name == "help":
                continue
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{name} {'/'.join(getattr(param, 'opts', [param.name]))}: no help text")
    assert not missing, "\n".join(missing)


def test_the_readme_lists_exactly_the_app_s_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert START in text and END in text, "the README lost its command list markers"
    listed = text[text.index(START):text.index(END) + len(END)]
    assert listed == table(), "README command list is stale: regenerate it with `python -m sinq.commands_doc`"


def test_python_m_sinq_runs_every_command_group() -> None:
    env = {**os.environ, "SINQ_CONFIG": ""}
    shown = subprocess.run([sys.executable, "-m", "sinq", "--help"], capture_output=True, text=True, timeout=120,
                           env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Usage: sinq" in shown.stdout
    for path, _ in walk(app_command()):
        if len(path) == 1:
            assert path[0] in shown.stdout, f"`python -m sinq --help` misses {path[0]}"
    agents = subprocess.run([sys.executable, "-m", "sinq", "agents", "--help"], capture_output=True, text=True,
                            timeout=120, env=env)
    assert agents.returncode == 0 and "bench" in agents.stdout and "baseline" in agents.stdout, agents.stdout
