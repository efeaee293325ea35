"""The baseline generator's walk through a problem's variant space across nights (issue 28, item 2).

One night's pick never repeats a variant the warehouse already holds for the problem (by normalised AST hash, the
key duplicate detection uses: ``game.similarity.ast_hash``): first the first-order mutants not yet stored, in the
generator's usual order (nearest the target difficulty first), then higher-order mutants: two or three sites of
different operator families on top of one another, drawn by a generator seeded by the pass and the problem, so
night k's pairs are not repeats of nights before it and a rerun of the same night draws the same ones. The plan step
(the flow's process, which reads the warehouse) hands the stored keys in; nothing here opens the warehouse."""

from __future__ import annotations

import difflib
import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sinq.agents.mutation import Span, mutant_sites
from sinq.game import syntax
from sinq.game.similarity import ast_hash

FAMILIES: dict[str, str] = {
    "arithmetic": "arithmetic", "comparison": "logic", "boolean": "logic", "negate_condition": "logic",
    "constant": "value", "return_none": "value", "range_off_by_one": "bounds", "slice_off_by_one": "bounds",
    "index_off_by_one": "bounds", "swap_arguments": "call", "remove_statement": "flow", "break_continue": "flow",
}
"""Operator families: a higher-order mutant takes each of its sites from another family, so it is not two nudges of
one kind (``<`` → ``<=`` on top of ``>`` → ``>=``) but a change of two different things."""

HIGHER_ORDER_TRIES = 8
"""Draws per wanted higher-order mutant before the problem's space counts as used up for this pick."""


@dataclass
class Exploration:
    """What one batch's generator knows of the warehouse: the pass, and per problem the keys of every variant
    already stored for it (travels with the batch to any worker)."""

    pass_id: str
    known: dict[str, list[str]] = field(default_factory=dict)


def pass_seed(pass_id: str, problem_id: str) -> int:
    """The higher-order draw's seed: content, so a resumed night draws what the first try drew."""
    digest = hashlib.sha256(f"explore\x00{pass_id}\x00{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def family(operator: str) -> str:
    return "+".join(sorted({FAMILIES.get(part, part) for part in operator.split("+")}))


def explore(code: str, entry_point: str, order: Sequence[str], known: Sequence[str], seed: int,
            want: int, stats: Counter, higher: int | None = None) -> list[tuple[str, str, Span | None, str | None]]:
    """Up to ``want`` (operator, source, span, key) mutants of ``code`` whose key is not in ``known`` nor repeated:
    the first-order ones in ``order`` first, then (at most ``higher`` of them, default ``want``) higher-order ones
    (operator ``a+b[+c]``; span None: the sites may be anywhere, so every input counts as reaching them). Counts
    what it skipped and drew in ``stats``."""
    original = ast_hash(code)
    seen = set(known) | ({original} if original else set())
    picked: list[tuple[str, str, Span | None, str | None]] = []
    first: list[tuple[str, str]] = []
    for operator, source, span in mutant_sites(code, entry_point, order):
        key = ast_hash(source)
        if key is None:
            continue
        first.append((operator, source))
        if key in seen:
            stats["explore_skipped_stored"] += 1
            continue
        seen.add(key)
        picked.append((operator, source, span, key))
        if len(picked) >= want:
            break
    stats["explore_first_order"] += len(picked)
    room = min(want - len(picked), want if higher is None else higher)
    if room <= 0 or len(first) < 2:
        return picked
    try:
        base = syntax.unparse(syntax.parse(code)) + "\n"
    except (SyntaxError, ValueError, RecursionError):
        return picked
    lines = base.splitlines(keepends=True)
    edits = [(operator, _edits(lines, source)) for operator, source in first]
    edits = [(operator, changes) for operator, changes in edits if changes]
    rng = random.Random(seed)
    drawn: set[str] = set()
    tries = 0
    while room > 0 and tries < HIGHER_ORDER_TRIES * (want if higher is None else higher):
        tries += 1
        combined = _draw(edits, 3 if rng.random() < 0.4 else 2, rng)
        if combined is None:
            continue
        operator, changes = combined
        source = _apply(lines, changes)
        if source in drawn:
            stats["explore_higher_order_repeats"] += 1
            continue
        drawn.add(source)
        key = ast_hash(source)
        if key is None or key in seen:
            stats["explore_higher_order_repeats"] += 1
            continue
        seen.add(key)
        picked.append((operator, source, None, key))
        stats["explore_higher_order"] += 1
        room -= 1
    return picked


Edit = tuple[int, int, tuple[str, ...]]


def _edits(lines: list[str], source: str) -> tuple[Edit, ...]:
    """Where a first-order mutant changes the unparsed original, as (first line, end line, new lines): a mutant is
    the original's tree unparsed with one node changed, so its changes are a few lines of the same text."""
    mutated = source.splitlines(keepends=True)
    return tuple((i1, i2, tuple(mutated[j1:j2])) for tag, i1, i2, j1, j2 in
                 difflib.SequenceMatcher(None, lines, mutated, autojunk=False).get_opcodes() if tag != "equal")


def _draw(edits: list[tuple[str, tuple[Edit, ...]]], k: int, rng: random.Random) -> tuple[str, list[Edit]] | None:
    """``k`` first-order mutants of different operator families whose changes touch different lines (fewer when
    there are not so many), as one operator name and their changes; None when not even two fit together."""
    order = list(range(len(edits)))
    rng.shuffle(order)
    names: list[str] = []
    families: set[str] = set()
    changes: list[Edit] = []
    for index in order:
        operator, own = edits[index]
        if FAMILIES.get(operator, operator) in families or not _apart(changes, own):
            continue
        names.append(operator)
        families.add(FAMILIES.get(operator, operator))
        changes += own
        if len(names) == k:
            break
    if len(names) < 2:
        return None
    return "+".join(names), sorted(changes)


def _apart(taken: list[Edit], new: tuple[Edit, ...]) -> bool:
    """Whether ``new``'s line ranges neither overlap nor touch ``taken``'s (an insertion included)."""
    return all(b_end < a_start or a_end < b_start for a_start, a_end, _ in taken for b_start, b_end, _ in new)


def _apply(lines: list[str], changes: list[Edit]) -> str:
    out: list[str] = []
    at = 0
    for start, end, new in changes:
        out += lines[at:start]
        out += new
        at = end
    return "".join(out + lines[at:])
