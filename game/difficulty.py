"""Difficulty of a verified pair: 10 x the share of the evaluator's answers that did NOT yield a verified divergence,
rounded half-up to an integer, with every answer in the denominator (non-answers and "equivalent" claims are
failures). Exact rational arithmetic: 10 x 1/8 = 1.25 -> 1, 10 x 1/20 = 0.5 -> 1, 10 x 3/40 = 0.75 -> 1."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class DifficultyLabel:
    difficulty: int
    n_answers: int
    n_failures: int
    evaluator: str


def difficulty(n_answers: int, n_successes: int) -> int:
    if n_answers <= 0:
        raise ValueError("difficulty needs at least one answer (every answer counts, including non-answers)")
    if not 0 <= n_successes <= n_answers:
        raise ValueError(f"successes ({n_successes}) must lie in 0..{n_answers}")
    share = Fraction(10 * (n_answers - n_successes), n_answers)
    return int(share + Fraction(1, 2)) if share.denominator != 1 else int(share)


def label(successes: list[bool], evaluator: str) -> DifficultyLabel:
    """``successes`` has one entry per answer the evaluator was asked for (True: a verified divergence)."""
    n = len(successes)
    won = sum(1 for s in successes if s)
    return DifficultyLabel(difficulty(n, won), n, n - won, evaluator)
