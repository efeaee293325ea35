"""The promotion gate's decision rule (issue 13): pure, no I/O. Given the paired comparison of the candidate
against the incumbent on each suite, a candidate passes when its primary suite improves *significantly* (exact
McNemar p <= alpha where every item is one binary query, else the paired bootstrap interval lies above 0) by at
least ``min_improvement``, and no no-regression suite falls by more than ``max_regression``; a primary suite that
could not be measured refuses (``require_primary``, the default: issue 26, nothing is promoted without evidence).
Every suite gets a human-readable reason, so a refusal says which figure refused it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class SuiteFigures:
    """One suite's paired figures, candidate - incumbent on the queries both scored; ``skipped`` says why a
    suite was not measured (then nothing else counts)."""

    suite: str
    role: str  # primary | no_regression
    delta: float = math.nan
    low: float = math.nan
    high: float = math.nan
    p_value: float | None = None
    items: int = 0
    incumbent: float | None = None
    candidate: float | None = None
    skipped: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Decision:
    passed: bool
    reasons: list[str]
    suites: dict[str, bool]

    def as_dict(self) -> dict:
        return asdict(self)


def _fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.4f}"


def _primary(f: SuiteFigures, min_improvement: float, alpha: float) -> tuple[bool, str]:
    head = f"{f.suite} (primary): delta {_fmt(f.delta)} [{_fmt(f.low)}, {_fmt(f.high)}] on {f.items} items"
    if math.isnan(f.delta):
        return False, f"{head}: nothing paired to compare"
    if f.p_value is not None:
        significant, how = f.p_value <= alpha, f"McNemar p = {f.p_value:.4g} {'<=' if f.p_value <= alpha else '>'} " \
                                               f"alpha {alpha}"
    else:
        significant = not math.isnan(f.low) and f.low > 0
        how = f"bootstrap {1 - alpha:.0%} interval {'above' if significant else 'not above'} 0"
    if f.delta <= 0:
        return False, f"{head}: no improvement ({how})"
    if f.delta < min_improvement:
        return False, f"{head}: improvement below min_improvement {min_improvement} ({how})"
    if not significant:
        return False, f"{head}: improvement not significant ({how})"
    return True, f"{head}: significant improvement ({how})"


def _no_regression(f: SuiteFigures, max_regression: float) -> tuple[bool, str]:
    head = f"{f.suite} (no regression): delta {_fmt(f.delta)} [{_fmt(f.low)}, {_fmt(f.high)}] on {f.items} items"
    if math.isnan(f.delta):
        return False, f"{head}: nothing paired to compare"
    if f.delta < -max_regression:
        return False, f"{head}: regression beyond max_regression {max_regression}"
    return True, f"{head}: within max_regression {max_regression}"


def decide(figures: list[SuiteFigures], min_improvement: float = 0.0, max_regression: float = 0.02,
           alpha: float = 0.05, require_primary: bool = True) -> Decision:
    """Passed when every measured suite passes its rule and something was measured. With ``require_primary`` (the
    default) a primary suite that was skipped, or none configured, refuses: no-regression suites only show that
    nothing got worse, never that the candidate got better, so they are no evidence for promoting it. Without it a
    skipped suite neither passes nor fails (its reason says why it was skipped)."""
    reasons, suites = [], {}
    for f in figures:
        if f.skipped:
            reasons.append(f"{f.suite} ({f.role.replace('_', ' ')}): skipped, {f.skipped}")
            continue
        ok, reason = (_primary(f, min_improvement, alpha) if f.role == "primary"
                      else _no_regression(f, max_regression))
        suites[f.suite] = ok
        reasons.append(reason)
    measured = [f for f in figures if not f.skipped]
    if not measured:
        return Decision(False, [*reasons, "nothing was measured: not promoted"], suites)
    if require_primary:
        skipped = [f.suite for f in figures if f.role == "primary" and f.skipped]
        if skipped:
            return Decision(False, [*reasons, f"primary suite {', '.join(skipped)} was skipped: not promoted "
                                    "(require_primary: no-regression suites alone are no evidence of improvement)"],
                            suites)
        if not any(f.role == "primary" for f in figures):
            return Decision(False, [*reasons, "no primary suite is configured: not promoted (require_primary: "
                                    "no-regression suites alone are no evidence of improvement)"], suites)
    elif not any(f.role == "primary" for f in measured):
        reasons.append("no primary suite was measured: decided on the no-regression suites alone "
                       "(require_primary = false)")
    return Decision(all(suites.values()), reasons, suites)
