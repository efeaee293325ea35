"""Parsing that threads cannot break (issue 26): CPython 3.11 keeps the AST constructor's recursion counter per
interpreter (gh-106905), so concurrent ``ast.parse`` in threads can raise ``SystemError``. The stress below makes
the race likely (tiny switch interval, cyclic garbage whose finalizers run Python code in the middle of building an
AST); it must break the bare ``ast.parse`` on this interpreter (else the stress proves nothing) and never
``sinq.game.syntax.parse``."""

from __future__ import annotations

import ast
import gc
import sys
import threading
from collections.abc import Callable

import pytest

from sinq.game import syntax

SOURCE = "def f(x):\n" + "".join(f"    y{i} = [(x + {i}) * 2 for _ in range(3) if x]\n" for i in range(50))


class _Cycle:
    """Garbage in a cycle with a finalizer: the collector runs Python code (and so may switch threads) wherever an
    allocation triggers it, e.g. inside the C code that builds AST objects."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        sum(range(20))


def _stress(parse: Callable[[str], object], threads: int = 8, rounds: int = 300) -> list[str]:
    errors: list[str] = []

    def work() -> None:
        for _ in range(rounds):
            for _ in range(5):
                _Cycle()
            try:
                parse(SOURCE)
            except SystemError as exc:
                errors.append(str(exc))
                return

    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50, 1, 1)
    try:
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
    return errors


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="gh-106905 is fixed in CPython 3.12's per-thread state")
def test_bare_ast_parse_breaks_under_the_stress() -> None:
    errors = []
    for _ in range(5):  # a race: a few tries make it near certain (it fell on the first in every local try)
        errors = _stress(ast.parse)
        if errors:
            break
    assert errors and "recursion depth mismatch" in errors[0]


def test_locked_parse_survives_the_stress() -> None:
    assert _stress(syntax.parse) == []
    assert _stress(lambda text: syntax.literal_eval(repr(text))) == []


def test_every_room_parses_through_the_lock() -> None:
    """No module outside game/syntax.py calls the converters itself (the sandbox's runner runs in its own
    single-threaded worker processes, stdlib only)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    rooms = ("game", "sandbox", "sources", "warehouse", "agents", "training", "evals", "tasks", "flows", "sinq")
    banned = {"parse", "literal_eval", "unparse"}
    found = []
    for room in rooms:
        for path in (root / room).rglob("*.py"):
            rel = path.relative_to(root).as_posix()
            if rel in ("game/syntax.py", "sandbox/runner.py"):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if (isinstance(func, ast.Attribute) and func.attr in banned and isinstance(func.value, ast.Name)
                        and func.value.id == "ast") or (isinstance(func, ast.Name) and func.id == "compile"):
                    found.append(f"{rel}:{node.lineno}")
    assert found == [], f"call sinq.game.syntax instead: {found}"


def test_an_interpreter_error_in_a_batch_is_retried_as_infrastructure(prefect_server) -> None:
    """A batch that fails with ``SystemError`` (the interpreter's own failure, not the data's) is retried by the
    nightly tasks' options, and the retry's result is the task's: never a Failed night for one such fall."""
    from prefect import flow, task

    from sinq.tasks import nightly

    calls: list[int] = []

    @task(**nightly.OPTIONS)
    def batch() -> str:
        calls.append(1)
        if calls.count(1) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=18, after=14)")
        return "stored"

    @task(**nightly.OPTIONS)
    def bad_data() -> str:
        calls.append(2)
        raise ValueError("a data error is never retried")

    @flow
    def night() -> tuple[str, str]:
        state = bad_data(return_state=True)
        return batch(), type(state.result(raise_on_failure=False)).__name__

    done, data_error = night()
    assert done == "stored" and calls.count(1) == 2, "the interpreter error was retried once, then succeeded"
    assert data_error == "ValueError" and calls.count(2) == 1, "a data error was retried"
