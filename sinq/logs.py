"""The console shows errors as one line; tracebacks belong to --debug (and to the Prefect UI, which keeps them).

Prefect's own loggers print a traceback for every failed task and flow run, and a lost API makes its background
services print more (threads, shutdown hooks). The CLI's one exit path already says what went wrong in one line, so
on the terminal these become one line each too; the records that go to the Prefect API are untouched.
"""

from __future__ import annotations

import copy
import logging
import sys
import threading


def _summary(exc_info: object) -> str:
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return ""
    exc = exc_info[1]
    first = str(exc).splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + first if first else ''}"


class OneLineFormatter(logging.Formatter):
    """Formats through the handler's own formatter, with the traceback replaced by its last line."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if not (record.exc_info or record.exc_text or record.stack_info):
            return self.inner.format(record)
        short = copy.copy(record)  # the same record still reaches the API handler with its traceback
        what = _summary(record.exc_info)
        message = record.getMessage()
        if "Traceback (most recent call last)" in message:  # Prefect sometimes puts the formatted traceback in msg
            message = message.split("Traceback (most recent call last)")[0].rstrip() or message.splitlines()[-1]
        short.msg = f"{message} ({what})" if what and what not in message else message
        short.args = None
        short.exc_info = short.exc_text = short.stack_info = None
        return self.inner.format(short)


def _console_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    found: list[logging.Handler] = []
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) \
                    and handler not in found:
                found.append(handler)
    return found


def one_line_tracebacks() -> None:
    """Call after Prefect configured its logging (it does at import). Idempotent."""
    for handler in _console_handlers():
        if not isinstance(handler.formatter, OneLineFormatter):
            handler.setFormatter(OneLineFormatter(handler.formatter))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread else "a thread"
        print(f"{name}: {_summary((args.exc_type, args.exc_value, args.exc_traceback))}", file=sys.stderr)

    def unraisable_hook(unraisable: object) -> None:
        exc = getattr(unraisable, "exc_value", None)
        if exc is not None:
            print(f"ignored at exit: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                  file=sys.stderr)

    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook
