"""Every verdict rule of DESIGN.md §3, settled by real sandboxed executions on the local backend."""

from __future__ import annotations

import pytest

from sinq.sandbox import Pair, run_tests, verify_many


def settle(backend, original: str, variant: str, inputs: object, entry: str = "f", config=None):
    verdict = verify_many([Pair("t", original, variant, entry, inputs)], backend, config)[0]
    return verdict


ONE = "def f(x):\n    return x + 1\n"


@pytest.mark.parametrize(
    ("variant", "inputs", "verdict", "reason"),
    [
        ("def f(x):\n    return x + 2\n", {"x": 1}, "diverges", "different_value"),
        ("def f(x):\n    return float(x + 1)\n", {"x": 1}, "diverges", "different_value"),
        ("def f(x):\n    return x + 1 == 2\n", {"x": 1}, "diverges", "different_value"),
        ("def f(x):\n    return 1 + x\n", {"x": 1}, "same", "same_value"),
        ("def f(x):\n    raise ValueError(x)\n", {"x": 1}, "diverges", "value_vs_exception"),
        ("def f(x):\n    return x + 1\n", "{'x': 1}", "same", "same_value"),
    ],
)
def test_value_rules(local_backend, variant: str, inputs: object, verdict: str, reason: str) -> None:
    result = settle(local_backend, ONE, variant, inputs)
    assert (result.verdict, result.reason) == (verdict, reason)
    assert result.original is not None and result.original.kind == "returned"


def test_both_raising_the_same_exception_is_not_a_divergence(local_backend) -> None:
    result = settle(local_backend, "def f(x):\n    return [][x]\n", "def f(x):\n    return [][x + 1]\n", {"x": 0})
    assert (result.verdict, result.reason) == ("same", "same_exception")


def test_different_exception_type_or_message_diverges(local_backend) -> None:
    original = "def f(x):\n    return [][x]\n"
    assert settle(local_backend, original, "def f(x):\n    return {}[x]\n", {"x": 0}).reason == "different_exception"
    assert settle(local_backend, original, "def f(x):\n    return ()[x]\n", {"x": 0}).verdict == "diverges"


def test_memory_addresses_do_not_make_messages_differ(local_backend) -> None:
    program = "def f(x):\n    raise ValueError(repr(object()))\n"
    variant = "class A:\n    pass\ndef f(x):\n    raise ValueError(repr(object()))\n"
    assert settle(local_backend, program, variant, {"x": 0}).reason == "same_exception"


def test_both_timing_out_is_not_a_divergence(local_backend) -> None:
    loop = "def f(x):\n    while True:\n        pass\n"
    result = settle(local_backend, loop, "def f(x):\n    while x:\n        pass\n", {"x": 1})
    assert (result.verdict, result.reason) == ("same", "both_timeout")


def test_one_side_timing_out_diverges_only_if_it_still_does_with_a_larger_budget(local_backend) -> None:
    # 0.7 s of CPU: over the 0.5 s budget, within the longer 1.0 s one
    slow = ("import time\ndef f(x):\n    end = time.process_time() + 0.7\n    while time.process_time() < end:\n"
            "        pass\n    return x + 1\n")
    result = settle(local_backend, ONE, slow, {"x": 1})
    assert (result.verdict, result.reason) == ("same", "same_value_after_longer_budget")
    never = "def f(x):\n    while True:\n        pass\n"
    result = settle(local_backend, ONE, never, {"x": 1})
    assert (result.verdict, result.reason) == ("diverges", "one_side_does_not_halt")
    assert result.variant.kind == "timeout"
    assert result.executions == 2 + 3 + 4  # stage 1, the original repeated, the variant again with more time


def test_waiting_is_not_running_out_of_time(local_backend) -> None:
    """The budget is CPU time; a starved or sleeping program gets up to 3x the wall time before it times out."""
    sleepy = "import time\ndef f(x):\n    time.sleep(0.7)\n    return x + 1\n"
    assert settle(local_backend, ONE, sleepy, {"x": 1}).reason == "same_value"


def test_random_variants_are_unstable(local_backend) -> None:
    variant = "import random\ndef f(x):\n    return x + random.random()\n"
    result = settle(local_backend, ONE, variant, {"x": 1})
    assert (result.verdict, result.reason) == ("unstable", "variant_nondeterministic")


def test_hash_seed_dependence_is_unstable(local_backend) -> None:
    original = "def f(n):\n    return sorted({str(i) for i in range(n)})\n"
    variant = "def f(n):\n    return list({str(i) for i in range(n)})\n"
    result = settle(local_backend, original, variant, {"n": 30})
    assert (result.verdict, result.reason) == ("unstable", "variant_depends_on_hash_seed")


def test_signature_and_input_problems_are_invalid(local_backend) -> None:
    assert settle(local_backend, ONE, "def f(x, y):\n    return x\n", {"x": 1}).reason == "signature_changed"
    assert settle(local_backend, ONE, "def f(y):\n    return y\n", {"y": 1}).reason == "input_does_not_bind"
    assert settle(local_backend, ONE, "def f(x, y=2):\n    return x\n", {"x": 1}).reason == "signature_changed"
    assert settle(local_backend, ONE, "def g(x):\n    return x\n", {"x": 1}).reason == "variant_no_entry_point"
    assert settle(local_backend, ONE, "def f(x):\n    return (\n", {"x": 1}).reason == "variant_syntax_error"
    assert settle(local_backend, ONE, ONE, "__import__('os')").reason == "input_not_literal"
    assert settle(local_backend, ONE, ONE, "[1]").reason == "input_not_dict"
    assert settle(local_backend, ONE, b"def f(x):\n    return '\xff'\n", {"x": 1}).reason == "variant_source_not_utf8"


def test_type_error_inside_the_function_is_an_outcome_not_a_binding_error(local_backend) -> None:
    result = settle(local_backend, ONE, "def f(x):\n    return x + 'a'\n", {"x": 1})
    assert (result.verdict, result.reason) == ("diverges", "value_vs_exception")
    assert result.variant.type == "TypeError"


def test_each_side_gets_its_own_copy_of_the_input(local_backend) -> None:
    original = "def f(xs):\n    xs.append(1)\n    return len(xs)\n"
    result = settle(local_backend, original, original, {"xs": [0]})
    assert (result.verdict, result.original.value) == ("same", "2")


def test_input_is_data_not_code(local_backend) -> None:
    program = "def f(x):\n    return x\n"
    result = settle(local_backend, program, program, {"x": "__import__('os').getpid()"})
    assert result.original.value == "\"__import__('os').getpid()\""


def test_loose_mode_uses_python_equality_on_numbers(local_backend) -> None:
    config = local_backend.config.model_copy(update={"compare": "loose"})
    float_variant = "def f(x):\n    return float(x + 1)\n"
    assert settle(local_backend, ONE, float_variant, {"x": 1}, config=config).verdict == "same"
    assert settle(local_backend, ONE, float_variant, {"x": 1}).verdict == "diverges"


def test_many_pairs_settle_in_input_order(local_backend) -> None:
    pairs = [Pair(str(i), ONE, f"def f(x):\n    return x + {i % 3}\n", "f", {"x": i}) for i in range(60)]
    verdicts = verify_many(pairs, local_backend)
    assert [v.id for v in verdicts] == [str(i) for i in range(60)]
    assert [v.verdict for v in verdicts] == ["same" if i % 3 == 1 else "diverges" for i in range(60)]


def test_problem_tests_run_as_scripts(local_backend) -> None:
    program = "def add(a, b):\n    return a + b\n"
    outcomes = run_tests(local_backend, [(program, "assert add(1, 2) == 3\n"), (program, "assert add(1, 2) == 4\n"),
                                         (program, "assert missing(1) == 1\n")])
    assert [o.kind for o in outcomes] == ["returned", "raised", "raised"]
    assert outcomes[1].type == "AssertionError"
    assert outcomes[2].type == "NameError"
