"""The one error base every user-facing failure derives from. It lives on the bottom floor (game/ imports nothing of
ours) so that every room can raise it; the CLI handles it once: one line, the hint, the class's exit code."""

from __future__ import annotations


class SinqError(Exception):
    """A failure a user can act on. ``exit_code`` is per class (documented in the README), ``hint`` says what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
