"""The README's command list, made from the typer app itself (``python -m sinq.commands_doc``), so it cannot drift:
tests/test_face.py checks the README holds exactly this text."""

from __future__ import annotations

import typer

START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def is_group(command: object) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def walk(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """Every command under ``group`` (groups included), in the order they were registered."""
    found = []
    for name, command in getattr(group, "commands", {}).items():
        if command.hidden:
            continue
        found.append(((*prefix, name), command))
        found += walk(command, (*prefix, name))
    return found


def app_command() -> object:
    from sinq.cli import app

    return typer.main.get_command(app)


def _first_line(command) -> str:
    text = (command.help or command.short_help or "").strip()
    return " ".join(text.split("\n\n")[0].split())


def table() -> str:
    rows = ["| command | what it does |", "|---|---|"]
    for path, command in walk(app_command()):
        if is_group(command):
            continue
        what = _first_line(command).replace("|", r"\|")
        rows.append(f"| `sinq {' '.join(path)}` | {what} |")
    return "\n".join([START, *rows, END])


if __name__ == "__main__":
    print(table())
