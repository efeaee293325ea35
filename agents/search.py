"""Candidate inputs derived from a problem's seed inputs: type-aware edits and boundaries, deterministic per seed.
Pure data work; every candidate is a literal keyword dict, executed only in the sandbox."""

from __future__ import annotations

import random
from collections.abc import Iterator

from sinq.game import syntax


def _variants(value: object, rng: random.Random) -> list[object]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, 0, -value, value * 2, 1, -1, value + rng.randint(2, 9)]
    if isinstance(value, float):
        return [value + 0.5, -value, 0.0, value * 2, round(value), value + 1e-9]
    if isinstance(value, str):
        out: list[object] = ["", value[::-1], value + value[-1:] if value else "a", value[1:], value[:-1],
                             value.upper(), value.lower(), " " + value]
        if value:
            chars = list(value)
            rng.shuffle(chars)
            out.append("".join(chars))
        return out
    if isinstance(value, list):
        out = [[], value[::-1], value[1:], value[:-1], value + value[-1:], sorted(value, key=repr)]
        if value:
            index = rng.randrange(len(value))
            for edit in _variants(value[index], rng)[:3]:
                out.append([*value[:index], edit, *value[index + 1:]])
        return out
    if isinstance(value, tuple):
        return [tuple(v) for v in _variants(list(value), rng) if isinstance(v, list)]
    if isinstance(value, dict):
        out = [{}]
        for key in list(value)[:3]:
            for edit in _variants(value[key], rng)[:2]:
                out.append({**value, key: edit})
        return out
    return []


def _boundary(original: object, edited: object) -> bool:
    """Whether ``edited`` is a boundary edit of ``original``: an empty or unit value, a step of one, a sign
    flip, one element more or less, or one element of a container so edited. Type-strict (True is not 1)."""
    if type(edited) is not type(original):
        return False
    if isinstance(original, bool):
        return True
    if isinstance(original, (int, float)):
        return edited in (0, 1, -1) or edited == -original or abs(edited - original) == 1  # type: ignore[operator]
    if isinstance(original, (str, list, tuple)):
        if not edited or edited in (original[1:], original[:-1], original + original[-1:]):  # type: ignore[operator]
            return True
        if isinstance(original, str) or len(edited) != len(original):  # type: ignore[arg-type]
            return False
        changed = [(a, b) for a, b in zip(original, edited, strict=True) if repr(a) != repr(b)]  # type: ignore[call-overload]
        return len(changed) == 1 and _boundary(*changed[0])
    if isinstance(original, dict):
        if not edited:
            return True
        changed = [k for k in original if k in edited and repr(original[k]) != repr(edited[k])]  # type: ignore[operator, index]
        return len(changed) == 1 and set(original) == set(edited) and _boundary(original[changed[0]],  # type: ignore[arg-type]
                                                                               edited[changed[0]])  # type: ignore[index]
    return False


def candidates(seed_inputs: list[str], budget: int, seed: int = 0, boundary_first: bool = False) -> Iterator[str]:
    """Up to ``budget`` distinct literal inputs: the seeds, then single-argument edits, then random double edits.
    With ``boundary_first`` the same inputs come in the order a search should try them: the seeds, then their
    boundary edits (empty, zero, one, a step of one, one element more or less), then the rest; a search that
    stops at its first divergence mostly stops early."""
    produced = _candidates(seed_inputs, budget, seed)
    if not boundary_first:
        yield from (literal for literal, _ in produced)
        return
    yield from (literal for literal, _ in sorted(produced, key=lambda item: item[1]))


def seed_dicts(seed_inputs: list[str]) -> list[dict]:
    """The seed inputs that parse as keyword dicts (the rest are skipped)."""
    parsed: list[dict] = []
    for literal in seed_inputs:
        try:
            value = syntax.literal_eval(literal)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            parsed.append(value)
    return parsed


def _candidates(seed_inputs: list[str], budget: int, seed: int) -> list[tuple[str, int]]:
    """The candidates with their rank: 0 a seed, 1 a boundary edit of one argument, 2 another single edit, 3 a
    random double edit."""
    rng = random.Random(seed)
    seen: set[str] = set()
    parsed = seed_dicts(seed_inputs)

    def emit(value: dict) -> str | None:
        literal = repr(value)
        if literal in seen or len(literal) > 20_000:
            return None
        try:
            syntax.literal_eval(literal)
        except (ValueError, SyntaxError, RecursionError):
            return None
        seen.add(literal)
        return literal

    pool: list[tuple[str, int]] = []
    for value in parsed:
        pool += [(x, 0) for x in [emit(value)] if x]
    for value in parsed:
        for key in value:
            for edit in _variants(value[key], rng):
                literal = emit({**value, key: edit})
                if literal:
                    pool.append((literal, 1 if _boundary(value[key], edit) else 2))
    out = pool[:budget]
    attempts = 0
    while len(out) < budget and parsed and attempts < budget * 20:
        attempts += 1
        value = dict(rng.choice(parsed))
        for key in rng.sample(list(value), k=min(2, len(value))):
            options = _variants(value[key], rng)
            if options:
                value[key] = rng.choice(options)
        literal = emit(value)
        if literal:
            out.append((literal, 3))
    return out
