"""Candidate inputs derived from a problem's seed inputs: type-aware edits and boundaries, deterministic per seed.
Pure data work; every candidate is a literal keyword dict, executed only in the sandbox."""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator


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


def candidates(seed_inputs: list[str], budget: int, seed: int = 0) -> Iterator[str]:
    """Up to ``budget`` distinct literal inputs: the seeds, then single-argument edits, then random double edits."""
    rng = random.Random(seed)
    seen: set[str] = set()
    parsed: list[dict] = []
    for literal in seed_inputs:
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            parsed.append(value)

    def emit(value: dict) -> str | None:
        literal = repr(value)
        if literal in seen or len(literal) > 20_000:
            return None
        try:
            ast.literal_eval(literal)
        except (ValueError, SyntaxError, RecursionError):
            return None
        seen.add(literal)
        return literal

    pool: list[str] = []
    for value in parsed:
        pool += [x for x in [emit(value)] if x]
    for value in parsed:
        for key in value:
            for edit in _variants(value[key], rng):
                literal = emit({**value, key: edit})
                if literal:
                    pool.append(literal)
    yield from pool[:budget]
    produced = min(len(pool), budget)
    attempts = 0
    while produced < budget and parsed and attempts < budget * 20:
        attempts += 1
        value = dict(rng.choice(parsed))
        for key in rng.sample(list(value), k=min(2, len(value))):
            options = _variants(value[key], rng)
            if options:
                value[key] = rng.choice(options)
        literal = emit(value)
        if literal:
            produced += 1
            yield literal
