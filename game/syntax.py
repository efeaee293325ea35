"""Every ``ast`` call of the process behind one lock.

CPython 3.11 keeps the AST constructor's recursion counter per interpreter, not per thread, so two threads turning
source into AST objects at once can raise ``SystemError: AST constructor recursion depth mismatch``
(CPython gh-106905; seen here on 3.11.7 in one nightly run in twelve, with Prefect's thread task runner). The rooms
never call ``ast.parse``, ``ast.literal_eval``, ``ast.unparse`` or ``compile`` themselves (tests/test_layout.py
checks it): they call these, which hold one re-entrant lock for the whole conversion. Parsing is microseconds;
the lock costs nothing measurable against a sandbox execution.

The sandbox's runner is the exception: it runs in its own single-threaded worker processes (stdlib only)."""

from __future__ import annotations

import ast
import threading
from typing import Any, Literal

LOCK = threading.RLock()
"""Held for each conversion between text and AST objects (and for compiling an AST), one thread at a time."""


def parse(source: str, mode: Literal["exec", "eval", "single", "func_type"] = "exec", **kwargs: Any) -> Any:
    """``ast.parse`` under the lock (same arguments, same ``SyntaxError``)."""
    with LOCK:
        return ast.parse(source, mode=mode, **kwargs)


def literal_eval(node_or_string: str | ast.AST) -> Any:
    """``ast.literal_eval`` under the lock: it parses its text first."""
    with LOCK:
        return ast.literal_eval(node_or_string)


def unparse(tree: ast.AST) -> str:
    """``ast.unparse`` under the lock (pure Python, but it walks trees that other threads may be building)."""
    with LOCK:
        return ast.unparse(tree)


def dump(tree: ast.AST, **kwargs: Any) -> str:
    """``ast.dump``: no C state, kept here so a module needs only this one for its AST work."""
    return ast.dump(tree, **kwargs)


def compile_source(source: str | ast.AST, filename: str, mode: str = "exec", **kwargs: Any) -> Any:
    """The builtin ``compile`` under the lock: an AST argument is validated with the same per-interpreter counter."""
    with LOCK:
        return compile(source, filename, mode, **kwargs)
