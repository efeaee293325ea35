"""How one evaluator answer scores on each kind of pair (issue 15). Every answer asked for counts: a non-answer is
wrong on both kinds.

- **inequivalent** pair (a verified divergence exists): right when the answer's input diverges in the sandbox; a
  "Yes" (claimed equivalent) is a *miss*; a "No" whose input does not diverge, or a non-answer, is wrong too.
- **equivalent** pair (fuzzed equal, never proven): right when the answer says "Yes"; a "No" whose input does not
  diverge (or that gives none) is a *false alarm*; a "No" whose input diverges in the sandbox proves the pair was not
  equivalent after all — the answer is right and the pair is *refuted* (relabelled inequivalent with that input).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("inequivalent", "equivalent")


@dataclass(frozen=True)
class Score:
    correct: bool
    outcome: str
    """found | missed | wrong_input | no_answer (inequivalent); said_yes | false_alarm | refuted | no_answer
    (equivalent)."""

    @property
    def refutes(self) -> bool:
        """The answer showed a divergence on a pair stored as equivalent: relabel it."""
        return self.outcome == "refuted"


def score(kind: str, claimed_equivalent: bool | None, diverged: bool) -> Score:
    """``claimed_equivalent``: True ("Yes"), False ("No"), None (no parsable answer); ``diverged``: the answer's
    input was settled in the sandbox and the two programs diverge on it."""
    if kind not in KINDS:
        raise ValueError(f"unknown pair kind {kind!r}; one of {KINDS}")
    if diverged and claimed_equivalent is True:
        raise ValueError("an answer that claims equivalence has no input to diverge on")
    if kind == "inequivalent":
        if diverged:
            return Score(True, "found")
        if claimed_equivalent is True:
            return Score(False, "missed")
        return Score(False, "no_answer" if claimed_equivalent is None else "wrong_input")
    if claimed_equivalent is True:
        return Score(True, "said_yes")
    if diverged:
        return Score(True, "refuted")
    return Score(False, "no_answer" if claimed_equivalent is None else "false_alarm")


@dataclass(frozen=True)
class KindFigures:
    """Per kind: answers, how many were right, and the rate that kind is known by (false alarms on equivalent
    pairs, misses on inequivalent ones), each over every answer asked for on that kind."""

    answers: int
    correct: int
    errors: int
    """false alarms (equivalent) or misses (inequivalent)."""

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answers if self.answers else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.answers if self.answers else None


def figures(scored: list[tuple[str, Score]]) -> dict[str, KindFigures]:
    """(kind, score) per answer → figures per kind present."""
    out: dict[str, KindFigures] = {}
    for kind in KINDS:
        mine = [s for k, s in scored if k == kind]
        if mine:
            error = "false_alarm" if kind == "equivalent" else "missed"
            out[kind] = KindFigures(len(mine), sum(s.correct for s in mine),
                                    sum(s.outcome == error for s in mine))
    return out
