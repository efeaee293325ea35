"""The diverging input is data, never code: a JSON object or a Python literal dict of keyword arguments."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from sinq.game import syntax

LITERAL_TYPES = (str, int, float, complex, bool, bytes, type(None))


class InputError(ValueError):
    """The input is not usable; ``reason`` is the rejection code stored with the sample."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ParsedInput:
    literal: str
    """``repr`` of the keyword dict: a Python literal that ``ast.literal_eval`` rebuilds in every child."""
    value: dict


def _check(value: object, depth: int = 0) -> None:
    if depth > 100:
        raise InputError("input_not_literal", "input is nested more than 100 levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError("input_not_literal", "NaN and infinities have no literal form")
    if isinstance(value, complex) and not (math.isfinite(value.real) and math.isfinite(value.imag)):
        raise InputError("input_not_literal", "NaN and infinities have no literal form")
    if isinstance(value, LITERAL_TYPES):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check(item, depth + 1)
        return
    raise InputError("input_not_literal", f"{type(value).__name__} is not a literal")


def parse_input(raw: object, max_bytes: int = 1 << 20) -> ParsedInput:
    """Accept a dict (decoded JSON) or a string holding JSON or a Python literal dict; return its literal form."""
    if isinstance(raw, str):
        if len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
            raise InputError("input_too_large", f"input is larger than {max_bytes} bytes")
        try:
            value = syntax.literal_eval(raw.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
            try:
                value = json.loads(raw)
            except ValueError:
                raise InputError("input_not_literal", f"not a Python literal or JSON: {exc}") from None
    else:
        value = raw
    if not isinstance(value, dict):
        raise InputError("input_not_dict", f"input must be a dict of keyword arguments, got {type(value).__name__}")
    bad = [k for k in value if not (isinstance(k, str) and k.isidentifier())]
    if bad:
        raise InputError("input_not_dict", f"keys must be argument names, got {bad[:3]!r}")
    _check(value)
    literal = repr(value)
    if len(literal) > max_bytes:
        raise InputError("input_too_large", f"input is larger than {max_bytes} bytes")
    try:
        syntax.literal_eval(literal)
    except (ValueError, SyntaxError, RecursionError) as exc:
        raise InputError("input_not_literal", f"input does not round-trip as a literal: {exc}") from None
    return ParsedInput(literal=literal, value=value)
