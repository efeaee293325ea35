"""The held-out split: which problems feed the evaluation suites and never seed training.

A source can be both a seed source and a benchmark (HumanEval is the embedded seed source and the no-regression
suite), so each source is split rather than lost. The rule is deterministic and needs no state: a problem is
``held_out`` when ``sha256(salt + problem_id)``, read as a number in [0, 1), falls below the source's share
(``held_out_share``, 0.2 by default; ``shares`` overrides it per source). The problem id is the content hash of
(source, source id, code), so the split is the same on every machine and every run, and changing ``salt`` draws a
new one. A problem whose source already names a split other than ``train`` (``test``, ``validation``, ...) keeps
it. Generation still runs on held-out problems: their verified pairs are the ``game`` suite's material; only the
training-set builders refuse them, checking both the stored split and this rule (a warehouse written before the
rule existed stored every problem as ``train``)."""

from __future__ import annotations

import hashlib
from typing import Literal

from sinq.sources.config import SplitConfig

HELD_OUT = "held_out"
TRAIN = "train"


def bucket(problem_id: str, salt: str) -> float:
    """Where a problem falls in [0, 1): the first 8 bytes of sha256(salt + problem_id)."""
    digest = hashlib.sha256(f"{salt}\0{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def split_of(problem_id: str, config: SplitConfig | None = None, source: str | None = None
             ) -> Literal["held_out", "train"]:
    config = config or SplitConfig()
    share = config.shares.get(source, config.held_out_share) if source is not None else config.held_out_share
    return HELD_OUT if bucket(problem_id, config.salt) < share else TRAIN


def assigned_split(stored: str | None, problem_id: str, config: SplitConfig | None = None,
                   source: str | None = None) -> str:
    """The split a problem has: the one its source named, unless that is ``train``, which the rule divides."""
    if stored and stored != TRAIN:
        return stored
    return split_of(problem_id, config, source)
