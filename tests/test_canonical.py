"""The canonical value encoding (the runner's code, exercised in-process on trusted values)."""

from __future__ import annotations

import collections
import copy
import decimal
import fractions
import math
import random

from hypothesis import given
from hypothesis import strategies as st

from sinq.sandbox.runner import Encoder, describe_exception, normalize_text


def strict(value: object) -> bytes:
    return Encoder().encode(value)


def loose(value: object) -> bytes:
    return Encoder(loose=True).encode(value)


def test_numbers_are_type_strict() -> None:
    assert len({strict(1), strict(1.0), strict(True)}) == 3
    assert strict(0.0) != strict(-0.0)
    assert strict(float("nan")) == strict(-float("nan"))
    assert strict(1) != strict(1 + 0j)
    assert strict(10**400) != strict(10**400 + 1)


def test_loose_mode_follows_python_equality_on_numbers() -> None:
    assert loose(1) == loose(1.0) == loose(True)
    assert loose(0.0) == loose(-0.0)
    assert loose(2.5) != loose(2)
    assert loose(float(2**53)) == loose(2**53)
    assert loose(2**53 + 1) != loose(float(2**53 + 1))
    assert loose({1, 2}) == loose(frozenset({2, 1}))
    assert loose(b"ab") == loose(bytearray(b"ab"))
    assert loose([1]) != loose((1,))
    assert loose(collections.OrderedDict(a=1)) == loose({"a": 1})


def test_containers_order_rules() -> None:
    assert strict({"a": 1, "b": 2}) == strict({"b": 2, "a": 1})
    assert strict({3, 1, 2}) == strict({2, 3, 1})
    assert strict([1, 2]) != strict([2, 1])
    assert strict((1, 2)) != strict([1, 2])
    assert strict({1}) != strict(frozenset({1}))
    assert strict(b"x") != strict(bytearray(b"x"))
    assert strict({"a": [1, {2, 3}]}) == strict({"a": [1, {3, 2}]})


def test_builtin_subclasses_keep_their_type_in_strict_mode() -> None:
    point = collections.namedtuple("Point", "x y")
    assert strict(point(1, 2)) != strict((1, 2))
    assert loose(point(1, 2)) == loose((1, 2))
    assert strict(collections.Counter("aab")) != strict({"a": 2, "b": 1})


class Box:
    def __init__(self, value: object) -> None:
        self.value = value


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: int, b: int) -> None:
        self.a, self.b = a, b


def test_objects_compare_by_state_not_identity() -> None:
    assert strict(Box([1, 2])) == strict(Box([1, 2]))
    assert strict(Box([1, 2])) != strict(Box([2, 1]))
    assert strict(Slotted(1, 2)) == strict(Slotted(1, 2))
    assert strict(Slotted(1, 2)) != strict(Slotted(2, 1))
    assert strict(decimal.Decimal("1.0")) != strict(decimal.Decimal("1.00"))
    assert strict(fractions.Fraction(1, 3)) == strict(fractions.Fraction(2, 6))
    assert strict(collections.deque([1, 2])) != strict(collections.deque([2, 1]))
    assert strict(range(3)) != strict(range(4))


def test_cycles_and_functions_encode() -> None:
    a: list = []
    a.append(a)
    b: list = []
    b.append(b)
    assert strict(a) == strict(b)
    assert strict(a) != strict([[]])
    assert strict(len) == strict(len)
    assert strict(lambda: 1) == strict(lambda: 2)  # both "<lambda>": functions compare by name only


def test_node_budget_is_enforced() -> None:
    import pytest

    from sinq.sandbox.runner import EncodeLimit

    with pytest.raises(EncodeLimit):
        Encoder(max_nodes=1000).encode(list(range(5000)))


def test_addresses_are_normalised_in_reprs_and_messages() -> None:
    one, two = object(), object()
    assert normalize_text(repr(one)) == normalize_text(repr(two))
    assert describe_exception(ValueError(repr(one)))["digest"] == describe_exception(ValueError(repr(two)))["digest"]
    assert describe_exception(ValueError("a"))["digest"] != describe_exception(ValueError("b"))["digest"]
    assert describe_exception(ValueError("a"))["digest"] != describe_exception(KeyError("a"))["digest"]


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary(),
    lambda children: st.lists(children) | st.tuples(children, children) | st.frozensets(st.integers())
    | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_like)
def test_encoding_is_a_function_of_the_value(value: object) -> None:
    assert strict(value) == strict(copy.deepcopy(value))
    assert loose(value) == loose(copy.deepcopy(value))


@given(st.dictionaries(st.text(), st.integers(), min_size=2))
def test_dict_insertion_order_never_matters(value: dict) -> None:
    items = list(value.items())
    random.shuffle(items)
    assert strict(dict(items)) == strict(value)


@given(json_like, json_like)
def test_strict_equality_implies_python_equality(a: object, b: object) -> None:
    if strict(a) == strict(b) and not _has_nan(a):
        assert a == b


def _has_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, (list, tuple, frozenset)):
        return any(_has_nan(v) for v in value)
    return False
