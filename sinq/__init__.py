"""sinq: a data factory for code-reasoning training data (the semantic inequivalence game)."""

from __future__ import annotations

import functools
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def code_version() -> str:
    """What produced a run (stored on every run row): the version, plus ``git describe`` in a checkout (``-dirty``
    when it has uncommitted changes); an installed wheel is its version alone."""
    import subprocess

    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / ".git").exists():
        return __version__
    try:
        described = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"{__version__}+{described}" if described else __version__
