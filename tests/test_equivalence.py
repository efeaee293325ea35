"""Equivalent pairs by construction (issue 15, items 1-2): each semantics-preserving transformation fires where its
conditions hold and the result is fuzzed equal to the original in the real sandbox; each refuses where they fail;
a deliberately unsound rule is caught by the fuzz filter, with its reason code and counter; on HumanEval most
problems get equivalent pairs."""

from __future__ import annotations

import ast
import time
from collections import Counter

import pytest

from sinq.agents.config import BaselineConfig, EquivalenceConfig
from sinq.agents.equivalents import (
    CROSS_TYPE_INPUTS,
    UNSOUND,
    EquivalentMaker,
    StoredEquivalent,
    arg_types,
    cross_type_inputs,
    fuzz_inputs,
    random_inputs,
    recheck_equivalents,
)
from sinq.game.equivalence import DEFAULT, REGISTRY, SEED_TYPED, rename_refusal, rewrite
from sinq.sandbox.verify import Pair, verify_many
from sinq.sources.problem import Problem

SOUND_CASES: dict[str, tuple[str, list[dict]]] = {
    "rename_local": ("""\
def f(xs, k):
    total = 0
    for x in xs:
        if x > k:
            total += x
    return total
""", [{"xs": [1, 5, 3], "k": 2}]),
    "for_to_while": ("""\
def f(n, stop):
    out = []
    for i in range(1, n, 2):
        if i == 7:
            continue
        if i > stop:
            break
        out.append(i)
    else:
        out.append(-1)
    return out
""", [{"n": 12, "stop": 9}, {"n": 3, "stop": 0}]),
    "comprehension_to_loop": ("""\
def f(xs):
    x = 10
    ys = [x * 2 for x in xs if x % 2]
    return ys, x, [a + b for a in xs for b in xs[:a] if b]
""", [{"xs": [1, 2, 3, 4]}]),
    "loop_to_comprehension": ("""\
def f(xs, k):
    out = []
    for x in xs:
        for y in range(x):
            if y % 2 == 0:
                out.append(x * k + y)
    return out
""", [{"xs": [1, 4, 3], "k": 10}]),
    "if_swap": ("""\
def f(a):
    if a > 3:
        r = 'big'
    elif a == 3:
        r = 'three'
    else:
        r = 'small'
    return r if a % 2 else r.upper()
""", [{"a": 5}, {"a": 2}]),
    "de_morgan": ("""\
def f(a, b):
    return (not (a and b), not a or not b, not (a or b) and a)
""", [{"a": 1, "b": 0}, {"a": [], "b": "x"}]),
    "extract_temporary": ("""\
def f(xs):
    if len(xs) > 2:
        return sum(xs) * 2
    for x in sorted(xs):
        if x < 0:
            return x
    return max(xs)
""", [{"xs": [3, 1, 2]}, {"xs": [-1]}]),
    "inline_temporary": ("""\
def f(a, b):
    r = a * b + 1
    return r
""", [{"a": 2, "b": 3}]),
    "reorder_statements": ("""\
def f(a, b):
    x = 0
    y = []
    z = a + b
    y.append(z)
    return x, y
""", [{"a": 1, "b": 2}, {"a": "p", "b": "q"}]),
    "range_len_to_enumerate": ("""\
def f(xs):
    ys = sorted(xs)
    best = 0
    for i in range(len(ys)):
        if ys[i] > best:
            best = ys[i] * i
    return best, len(ys)
""", [{"xs": [3, 9, 2]}]),
    "early_return_to_flag": ("""\
def f(xs, t):
    for i, x in enumerate(xs):
        if x == t:
            return i
        elif x > 100:
            return None
    return -1
""", [{"xs": [4, 5, 6], "t": 5}]),
    "algebraic_double": ("""\
def f(xs, k):
    n = len(xs)
    half = n / 2
    total = 0
    for i in range(n):
        total += i * 2
    return n * 2, 2 * half, total, [j + j for j in range(k)]
""", [{"xs": [1, 2, 3], "k": 3}, {"xs": "ab", "k": 0}]),
    "commute_numeric": ("""\
def f(xs, k):
    n = len(xs)
    big = n > 2
    return big, n + 1, 3 * n, len(xs) == 0
""", [{"xs": [1, 2, 3], "k": 3}, {"xs": "ab", "k": 0}]),
    "range_explicit_start": ("""\
def f(n, k):
    out = [i for i in range(n)]
    return out, list(range(k, n))
""", [{"n": 4, "k": 1}, {"n": 0, "k": 2}]),
    "shift_int_bound": ("""\
def f(xs, k):
    n = len(xs)
    count = 0
    for i in range(n):
        if i > 0 and i < n - 1:
            count += 1
    pos = 'abc'.find(k) if type(k) is str else -1
    return count >= 2, len(xs) == 0, n <= count, count != k, pos > -1, 0 < n
""", [{"xs": [1, 2, 3, 4], "k": 2}, {"xs": "ab", "k": "b"}, {"xs": [], "k": 0}]),
    "parity_check": ("""\
def f(xs):
    out = []
    for i, x in enumerate(xs):
        if i % 2 == 0:
            out.append(x)
        elif 1 == i % 2:
            out.append(-i)
    return out, len(xs) % 2 != 0
""", [{"xs": [5, 6, 7]}, {"xs": "abcd"}]),
    "explicit_start": ("""\
def f(xs):
    total = sum(xs)
    return total, [i for i, _ in enumerate(xs)], sum(x for x in xs), sum(xs, 0)
""", [{"xs": [1, 2, 3]}, {"xs": [0.5, -0.0]}]),
    "commute_equality": ("""\
def f(a, b):
    if a == 0:
        return 'zero'
    check = lambda v: v != 1
    return b % 2 != 1, a == -0.0, 2.5 == b, check(a)
""", [{"a": 0, "b": 3}, {"a": 1.5, "b": 2.5}, {"a": "x", "b": "%d"}]),
}


SAME = {"same_value", "same_exception", "both_timeout", "same_resource_limit", "same_crash",
        "both_timeout_after_longer_budget", "same_value_after_longer_budget"}
"""What the verdict rules call equal (an input on which both sides time out is tried, and said so)."""


def problem(code: str, seeds: list[dict], entry: str = "f") -> Problem:
    return Problem(source="test", source_id=code[:30], code=code, tests="", entry_point=entry,
                   seed_inputs=[repr(s) for s in seeds])


def test_default_set_is_every_sound_rule() -> None:
    assert set(DEFAULT) == set(SOUND_CASES)
    assert "unsound_lt_to_le" in REGISTRY and "unsound_lt_to_le" not in DEFAULT


@pytest.mark.parametrize("name", sorted(SOUND_CASES))
def test_transformation_fires_and_keeps_the_signature(name: str) -> None:
    code, seeds = SOUND_CASES[name]
    made = rewrite(code, "f", transformations=[name], steps=1, seed=1, arg_types=arg_types([repr(s) for s in seeds]))
    assert made.applied == [name], made.reasons
    tree, original = ast.parse(made.code), ast.parse(code)
    assert ast.dump(tree) != ast.dump(original)
    assert ast.dump(tree.body[0].args) == ast.dump(original.body[0].args)  # type: ignore[attr-defined]
    again = rewrite(code, "f", transformations=[name], steps=1, seed=1,
                    arg_types=arg_types([repr(s) for s in seeds]))
    assert again.code == made.code  # deterministic for a seed


def test_each_transformation_is_fuzzed_equal_in_the_sandbox(local_backend) -> None:
    """Every sound rule alone (and composed, steps 3) on its program: no divergence on seeds, search and random
    inputs."""
    for name, (code, seeds) in sorted(SOUND_CASES.items()):
        config = EquivalenceConfig(per_problem=2, attempts=2, steps=1, fuzz_budget=40, transformations=[name],
                                   verified_inputs=0)
        result = EquivalentMaker(local_backend, config).make([problem(code, seeds)])
        assert not result.dropped, (name, [(d.reason, d.input, d.detail) for d in result.dropped])
        assert result.pairs, name
        for pair in result.pairs:
            assert pair.transformations == [name]
            assert len(pair.inputs_tried) >= 10, (name, pair.inputs_tried)
            reasons = {o["reason"] for o in pair.outcomes}
            assert reasons <= SAME and "same_value" in reasons, (name, reasons)
    composed = [problem(code, seeds) for code, seeds in SOUND_CASES.values()]
    result = EquivalentMaker(local_backend, EquivalenceConfig(steps=3, fuzz_budget=40)).make(composed)
    assert not result.dropped, [(d.transformations, d.input, d.detail) for d in result.dropped]
    assert len(result.pairs) >= len(composed)
    for pair in result.pairs:  # the default: quick runs on the whole budget, full verdicts on the first 8
        assert pair.fuzzed >= 10 and 1 <= len(pair.inputs_tried) <= max(8, pair.fuzzed)
    assert result.stats["quick_runs"] >= 10 * len(result.pairs)


def refused(code: str, name: str, types: dict | None = None) -> dict[str, int]:
    made = rewrite(code, "f", transformations=[name], steps=1, arg_types=types)
    assert not made.changed and made.code == code
    return made.reasons


def test_reordering_refuses_shared_names_calls_and_two_risky_statements() -> None:
    assert "reorder_statements:shared_name" in refused("def f(a):\n    x = a\n    y = x\n    return y\n",
                                                      "reorder_statements")
    assert "reorder_statements:call_or_effect" in refused("def f(a):\n    x = g()\n    y = 1\n    return x, y\n",
                                                         "reorder_statements")
    assert "reorder_statements:both_may_raise" in refused(
        "def f(a, b):\n    x = a + 1\n    y = b + 1\n    return x, y\n", "reorder_statements")
    assert "reorder_statements:exception_handler_in_function" in refused(
        "def f(a, b):\n    try:\n        x = a[0]\n        y = 1\n    except IndexError:\n        return y\n"
        "    return x\n", "reorder_statements")


def test_rename_refuses_names_in_scope_parameters_closures_and_introspection() -> None:
    code = "def f(xs, k):\n    total = 0\n    for x in xs:\n        total += x * k\n    return total\n"
    function = ast.parse(code).body[0]
    assert rename_refusal(function, "total", "k", set()) == "new_name_in_scope"  # a parameter's name
    assert rename_refusal(function, "total", "x", set()) == "new_name_in_scope"  # another local
    assert rename_refusal(function, "total", "len", set()) == "new_name_in_scope"  # a builtin
    assert rename_refusal(function, "total", "other", {"other"}) == "new_name_in_scope"  # a global elsewhere
    assert rename_refusal(function, "k", "kk", set()) == "parameter"
    assert rename_refusal(function, "total", "fresh", set()) is None
    assert "rename_local:frame_introspection" in refused(
        "def f(a):\n    b = a\n    return locals()\n", "rename_local")
    assert "rename_local:used_by_nested_scope" in refused(
        "def f(a):\n    b = a\n    return (lambda: b)()\n", "rename_local")
    assert "rename_local:comprehension_binds_name" in refused(
        "def f(a):\n    x = 1\n    return [x for x in a], x\n", "rename_local")


def test_other_refusals() -> None:
    assert "for_to_while:step_not_int_literal" in refused(
        "def f(n, s):\n    t = []\n    for i in range(0, n, s):\n        t.append(i)\n    return t\n", "for_to_while")
    loop = "def f(xs):\n    s = 0\n    for i in range(len(xs)):\n        s += xs[i]\n    return s\n"
    for types in (None, {"xs": {"dict"}}, {"xs": {"list"}}):  # a parameter: any literal, whatever the seeds were
        assert "range_len_to_enumerate:sequence_type_not_provable" in refused(loop, "range_len_to_enumerate", types)
    mutating = "def f(xs):\n    ys = list(xs)\n    for i in range(len(ys)):\n        ys.append(ys[i])\n" \
               "        if i > 3:\n            break\n    return ys\n"
    assert "range_len_to_enumerate:sequence_may_change" in refused(mutating, "range_len_to_enumerate")
    rebound = "def f(xs):\n    ys = list(xs)\n    for i in range(len(ys)):\n        ys = [ys[i]]\n    return ys\n"
    assert "range_len_to_enumerate:sequence_may_change" in refused(rebound, "range_len_to_enumerate")
    aliased = "def f(xs):\n    ys = xs\n    for i in range(len(ys)):\n        print(ys[i])\n"
    assert "range_len_to_enumerate:sequence_type_not_provable" in refused(aliased, "range_len_to_enumerate")
    assert "early_return_to_flag:return_in_nested_block" in refused(
        "def f(xs):\n    for x in xs:\n        for y in xs:\n            if x == y:\n                return x\n"
        "    return None\n", "early_return_to_flag")
    for types in (None, {"x": {"dict"}}, {"x": {"int"}}):
        assert "algebraic_double:type_not_provable" in refused("def f(x):\n    return x * 2\n", "algebraic_double",
                                                               types)
    for code in ("def f(x):\n    y = x[0]\n    return y * 2\n",  # an item of an input: any literal
                 "def f(x):\n    y = 1\n    y = y ** x\n    return y * 2\n",  # ** may make a complex
                 "def f(x, p=object()):\n    y = 3 % p\n    return y * 2\n",  # a default that is no literal
                 "def f(x):\n    y, z = 1, x\n    return y * 2\n",  # unpacking: not proved
                 "def f(x):\n    g = lambda: y\n    y = 1\n    return y * 2\n"):  # a closure sees it
        assert "algebraic_double:type_not_provable" in refused(code, "algebraic_double"), code
    fib = "def f(n):\n    if n == 0:\n        return 0\n    return f(n - 1) + 1\n"  # f(-1) recurses without end
    assert refused(fib, "if_swap") == {"recursive_module": 1} == refused(fib, "extract_temporary")
    assert "rename_local:may_be_read_unbound" in refused(
        "def f(xs):\n    for x in xs:\n        last = x + 1\n    return last, x\n", "rename_local")
    assert "comprehension_to_loop:nested_scope_in_comprehension" in refused(
        "def f(xs):\n    return [lambda: x for x in xs]\n", "comprehension_to_loop")
    leaky = "def f(xs):\n    out = []\n    for x in xs:\n        out.append(x + 1)\n    return out, x\n"
    assert "loop_to_comprehension:loop_variable_used_after" in refused(leaky, "loop_to_comprehension")
    reads = "def f(xs):\n    out = []\n    for x in xs:\n        out.append(len(out) + x)\n    return out\n"
    assert "loop_to_comprehension:accumulator_read_in_loop" in refused(reads, "loop_to_comprehension")
    assert "if_swap:no_else" in refused("def f(a):\n    if a:\n        return 1\n    return 2\n", "if_swap")
    assert "inline_temporary:temporary_used_elsewhere" in refused(
        "def f(a):\n    r = a + 1\n    x = r\n    return x + r\n", "inline_temporary")


TYPE_DEPENDENT: dict[str, tuple[str, list[dict], list[str]]] = {
    "range_len_to_enumerate": ("""\
def f(lst):
    result = []
    for i in range(len(lst)):
        if i % 3 == 0:
            result.append(lst[i] ** 2)
        else:
            result.append(lst[i])
    return sum(result)
""", [{"lst": [1, 2, 3]}, {"lst": [-1, -5, 2, -1, -5]}, {"lst": []}],
        ["{'lst': {0: 2, 1: 3}}", "{'lst': {1, 2}}", "{'lst': None}"]),
    "algebraic_double": ("""\
def f(a, b):
    pat = b + b
    return a in pat
""", [{"a": "xy", "b": "yx"}, {"a": "ab", "b": "ba"}],
        ["{'a': 'x', 'b': {0: 'x'}}", "{'a': 1, 'b': {1, 2}}", "{'a': 'x', 'b': None}"]),
}
"""Issue 26: HumanEval's ``sum_squares`` and ``cycpattern_check`` shapes, their seeds' types, and accepted inputs of
other types (a dict with int keys, a set, None) on which the pre-issue-26 rewrite diverges."""


@pytest.mark.parametrize("name", sorted(TYPE_DEPENDENT))
def test_type_dependent_rules_never_trust_the_seeds_types(name: str) -> None:
    code, seeds, _ = TYPE_DEPENDENT[name]
    made = rewrite(code, "f", transformations=[name], steps=1, arg_types=arg_types([repr(x) for x in seeds]))
    assert not made.changed, made.code
    assert any(reason.endswith("_not_provable") for reason in made.reasons), made.reasons
    legacy = rewrite(code, "f", transformations=[SEED_TYPED[name]], steps=1,
                     arg_types=arg_types([repr(x) for x in seeds]))
    assert legacy.changed and SEED_TYPED[name] not in DEFAULT


def test_the_old_type_dependent_rewrites_diverge_on_other_types_and_the_fuzzer_drops_them(local_backend) -> None:
    """The real verdict engine refutes the seed-typed rewrites on a dict, a set and None; the fuzzer's cross-type
    inputs drop them (blamed as unsound) even though the rule fired, and without those inputs the old hole is back
    (the pair is kept) and ``recheck_equivalents`` finds it."""
    for name, (code, seeds, others) in sorted(TYPE_DEPENDENT.items()):
        legacy = SEED_TYPED[name]
        variant = rewrite(code, "f", transformations=[legacy], steps=1,
                          arg_types=arg_types([repr(x) for x in seeds])).code
        verdicts = verify_many([Pair(str(i), code, variant, "f", x) for i, x in enumerate(others)], local_backend)
        assert [v.verdict for v in verdicts] == ["diverges"] * len(others), (name, [v.reason for v in verdicts])
        config = EquivalenceConfig(per_problem=1, attempts=1, steps=1, transformations=[legacy])
        caught = EquivalentMaker(local_backend, config).make([problem(code, seeds)])
        assert not caught.pairs and [d.reason for d in caught.dropped] == [UNSOUND], name
        assert caught.blamed == Counter({legacy: 1})
        assert ast.literal_eval(caught.dropped[0].input) not in seeds
        missed = EquivalentMaker(local_backend, config, cross_types=0).make([problem(code, seeds)])
        assert len(missed.pairs) == 1, name
        pair = missed.pairs[0]
        stored = StoredEquivalent("p", pair.tried[0][0].original, pair.tried[0][0].variant,  # type: ignore[arg-type]
                                  "f", pair.inputs_tried)
        found = recheck_equivalents([stored], local_backend)
        assert set(found.refuted) == {"p"} and found.refuted["p"][1].verdict == "diverges"


def test_the_fixed_rules_hold_on_inputs_of_every_literal_type(local_backend) -> None:
    """The rules as they fire now (on locals whose type the code proves) agree with the original on every
    cross-type input, under the full verdict rules."""
    for name in sorted(SEED_TYPED):
        code, seeds = SOUND_CASES[name]
        made = rewrite(code, "f", transformations=[name], steps=1, seed=1)
        assert made.applied == [name], made.reasons
        others = cross_type_inputs([repr(x) for x in seeds], None)
        assert len(others) >= 30
        verdicts = verify_many([Pair(str(i), code, made.code, "f", x) for i, x in enumerate(others)], local_backend)
        assert {v.verdict for v in verdicts} == {"same"}, [(x, v.reason) for x, v in zip(others, verdicts,
                                                                                        strict=True)
                                                          if v.verdict != "same"]


def test_fuzz_inputs_try_other_literal_types_than_the_seeds() -> None:
    p = problem("def f(xs, s, n):\n    return xs\n", [{"xs": [1, 2], "s": "ab", "n": 3}, {"xs": [], "s": "", "n": 0}])
    inputs = fuzz_inputs(p, EquivalenceConfig(fuzz_budget=32), BaselineConfig())
    assert len(inputs) == 32 == len(set(inputs)) and inputs[:2] == p.seed_inputs
    cross = inputs[-CROSS_TYPE_INPUTS:]
    assert cross == cross_type_inputs(p.seed_inputs, CROSS_TYPE_INPUTS)
    seed_types = {"xs": list, "s": str, "n": int}
    changed = [(k, type(v)) for x in cross for k, v in ast.literal_eval(x).items() if type(v) is not seed_types[k]]
    assert {k for k, _ in changed} == {"xs", "s", "n"}  # every argument gets another type
    assert {dict, type(None)} <= {t for _, t in changed}
    every = [ast.literal_eval(x) for x in cross_type_inputs(p.seed_inputs, None)]
    kinds = {type(v) for x in every for v in x.values()}
    assert {dict, set, type(None), str, bytes, tuple, list, float, bool, complex, int} <= kinds
    assert {0: 1, 1: 2} in [x["xs"] for x in every]  # the list's items under int keys: x[i] still works
    assert any(type(x["n"]) is float and str(x["n"]) == "-0.0" for x in every)
    assert any(x["xs"] == [[1, 2], [3]] for x in every) and any(x["xs"] == set() for x in every)
    assert inputs == fuzz_inputs(p, EquivalenceConfig(fuzz_budget=32), BaselineConfig())  # deterministic
    assert fuzz_inputs(p, EquivalenceConfig(fuzz_budget=32), BaselineConfig(), cross_types=0)[-1] not in cross


def test_fuzz_inputs_mix_seeds_search_and_typed_random() -> None:
    p = problem("def f(xs, s, x):\n    return xs\n", [{"xs": [1, 2], "s": "ab", "x": 1.5}])
    inputs = fuzz_inputs(p, EquivalenceConfig(fuzz_budget=30), BaselineConfig())
    assert inputs[0] == p.seed_inputs[0] and len(inputs) == 30 == len(set(inputs))
    values = [ast.literal_eval(x) for x in random_inputs(p.seed_inputs, 40, 3)]
    assert all(isinstance(v["xs"], list) and isinstance(v["s"], str) and isinstance(v["x"], float) for v in values)
    assert any(v["s"] == "" for v in values) and any(not v["xs"] for v in values)
    assert len({len(v["xs"]) for v in values}) >= 4
    assert random_inputs(p.seed_inputs, 40, 3) == random_inputs(p.seed_inputs, 40, 3)


def test_unsound_transformation_is_caught_by_the_fuzz_filter(local_backend) -> None:
    code = "def f(a, b):\n    m = a - b\n    return m, a < b\n"
    config = EquivalenceConfig(per_problem=1, attempts=1, steps=2, fuzz_budget=30,
                               transformations=["unsound_lt_to_le", "rename_local"])
    result = EquivalentMaker(local_backend, config).make([problem(code, [{"a": 1, "b": 2}])])
    assert not result.pairs
    assert [d.reason for d in result.dropped] == [UNSOUND]
    dropped = result.dropped[0]
    assert sorted(dropped.transformations) == ["rename_local", "unsound_lt_to_le"]
    assert result.blamed == Counter({"unsound_lt_to_le": 1, "rename_local": 1})  # blame goes to every rule applied
    assert result.drop_share() == {"rename_local": 1.0, "unsound_lt_to_le": 1.0}
    value = ast.literal_eval(dropped.input)
    assert value["a"] == value["b"]  # the only inputs on which < and <= differ


def test_disabled_makes_nothing(local_backend) -> None:
    code, seeds = SOUND_CASES["rename_local"]
    assert not EquivalentMaker(local_backend, EquivalenceConfig(enabled=False)).make([problem(code, seeds)]).pairs


def test_humaneval_gets_equivalent_pairs(local_backend) -> None:
    from sinq.sources.loaders import load
    from sinq.tasks.validation import validate

    problems = [p for p in validate(load("humaneval", limit=20), local_backend) if p.reason is None]
    start = time.perf_counter()
    config = EquivalenceConfig(per_problem=2, attempts=2, fuzz_budget=24)
    result = EquivalentMaker(local_backend, config).make(problems)
    elapsed = time.perf_counter() - start
    per = Counter(p.problem_id for p in result.pairs)
    counts = [per[p.problem_id] for p in problems]
    shares = {k: round(v, 3) for k, v in result.drop_share().items()}
    print(f"\nequivalent pairs per problem: {counts} (total {sum(counts)} on {len(problems)} problems, {elapsed:.1f}s)")
    print(f"fuzzed per transformation: {dict(result.fuzzed)}; dropped share: {shares}")
    print(f"stats: {dict(result.stats)}; drops: {Counter(d.reason for d in result.dropped)}")
    assert sum(1 for c in counts if c) >= 0.7 * len(problems)
    assert all(c <= 2 for c in counts)
    assert not result.blamed, [(d.transformations, d.input, d.detail) for d in result.dropped]
    # the stored evidence holds: a fresh verdict on every stored input of some pairs says "same"
    recheck = [Pair(f"{i}:{j}", p.original_code, p.variant_code, p.entry_point, literal)
               for i, p in enumerate(result.pairs[:6]) for j, literal in enumerate(p.inputs_tried)]
    assert recheck and all(v.verdict == "same" for v in verify_many(recheck, local_backend))


def test_inputs_on_which_the_original_hangs_are_left_out_before_the_verdicts(local_backend) -> None:
    """A random input that makes the original loop for seconds would cost each candidate full verdict budgets and
    prove only that both sides time out: one quick run of the original screens it out first."""
    code = ("def f(n):\n    total = 0\n    i = 0\n    while i < n:\n        total += i\n        i += 1\n"
            "    return total\n")
    slow = "{'n': 10 ** 12}"
    made = problem(code, [{"n": 3}, {"n": 0}])
    made.seed_inputs.append(slow)
    config = EquivalenceConfig(per_problem=1, attempts=2, fuzz_budget=12, transformations=["rename_local"])
    result = EquivalentMaker(local_backend, config).make([made])
    assert result.stats["slow_inputs_skipped"] >= 1
    assert result.pairs and all(slow not in p.inputs_tried for p in result.pairs)
    assert all(o["reason"] != "both_timeout" for p in result.pairs for o in p.outcomes)


NUMBER_RULES = ("shift_int_bound", "parity_check", "explicit_start", "commute_equality")
"""Issue 27: the rules that make a number literal appear, disappear or change, as a mutant's constant edit does."""


def test_number_rules_refuse_what_the_code_does_not_prove() -> None:
    for code in ("def f(x):\n    return x > 0\n",  # a parameter: 0.5 > 0 but not 0.5 >= 1; 'a' > 0 names '>'
                 "def f(xs):\n    h = len(xs) / 2\n    return h < 3\n",  # a float local
                 "def f(xs):\n    y = xs[0]\n    return y >= 1\n",  # an item of an input: any literal
                 "def f(x):\n    n = x ** 2\n    return n < 3\n"):  # ** of an unknown: any type, or a float
        assert "shift_int_bound:int_not_provable" in refused(code, "shift_int_bound"), code
    assert "shift_int_bound:not_len_against_zero" in refused("def f(x):\n    return x == 0\n", "shift_int_bound")
    for code in ("def f(x):\n    return x % 2 == 0\n",  # 1.5 % 2 != 1 and != 0; '%d' % 2 formats
                 "def f(xs):\n    h = len(xs) / 2\n    return h % 2 == 1\n"):
        assert "parity_check:int_not_provable" in refused(code, "parity_check"), code
    for code in ("def f(xs):\n    sum = len\n    return sum(xs)\n",  # not the builtin
                 "def f(xs):\n    return sum(xs, 1), enumerate(xs, start=0), sum(xs, 0.0)\n"):  # no default start
        assert rewrite(code, "f", transformations=["explicit_start"], steps=1).applied == [], code
    assert rewrite("def f(x):\n    return x < 3\n", "f", transformations=["commute_equality"]).applied == []


def test_number_rules_hold_on_inputs_of_every_literal_type(local_backend) -> None:
    """Each number rule, at every site it picks over several seeds, agrees with the original under the full
    verdict rules on every cross-type input (a dict, a set, None, bytes, -0.0, a str where a number was...)."""
    pairs: list[Pair] = []
    for name in NUMBER_RULES:
        code, seeds = SOUND_CASES[name]
        literals = [repr(s) for s in seeds]
        inputs = literals + cross_type_inputs(literals, None)
        variants = {rewrite(code, "f", transformations=[name], steps=2, seed=seed).code for seed in range(6)}
        variants.discard(code)
        assert variants, name
        pairs += [Pair(f"{name}:{v}:{i}", code, variant, "f", x) for v, variant in enumerate(sorted(variants))
                  for i, x in enumerate(inputs)]
    verdicts = verify_many(pairs, local_backend)
    wrong = [(p.pair_id, p.input, v.reason) for p, v in zip(pairs, verdicts, strict=True) if v.verdict != "same"]
    assert not wrong, wrong[:5]
    assert len(pairs) >= 200
