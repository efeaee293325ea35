"""A program is a function that exists (DESIGN.md §3): a side whose module fails while loading, or that defines no
callable entry point, is ``invalid`` with its own reason code on both backends, never one half of a divergence.
Only what the *call* does is an outcome."""

from __future__ import annotations

import pytest

from sinq.sandbox import Pair, run_tests, verify_many
from sinq.sources.problem import Problem
from sinq.tasks.validation import validate

GOOD = "from typing import List\n\ndef f(xs: List[str]) -> int:\n    return len(xs)\n"
LOAD_FAILURES = {
    # the defect seen on real runs: a mutated annotation raises TypeError while the module loads
    "annotation": ("from typing import List\n\ndef f(xs: List[str + 1]) -> int:\n    return len(xs)\n", "TypeError"),
    "return_annotation": ("def f(xs) -> 1 / 0:\n    return len(xs)\n", "ZeroDivisionError"),
    "missing_module": ("import sinq_no_such_module\n\ndef f(xs):\n    return len(xs)\n", "ModuleNotFoundError"),
    "module_level_raise": ("raise ValueError('at import')\n\ndef f(xs):\n    return len(xs)\n", "ValueError"),
    "decorator": ("def deco(fn):\n    raise KeyError('deco')\n\n@deco\ndef f(xs):\n    return len(xs)\n", "KeyError"),
    "module_level_hang": ("while True:\n    pass\n\ndef f(xs):\n    return len(xs)\n", "timeout"),
}


@pytest.fixture(params=["local", "docker"])
def backend(request):
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.mark.parametrize("case", sorted(LOAD_FAILURES))
def test_a_variant_that_fails_to_load_is_invalid(backend, case: str) -> None:
    variant, exc_type = LOAD_FAILURES[case]
    verdict = verify_many([Pair(case, GOOD, variant, "f", {"xs": ["a"]})], backend)[0]
    assert (verdict.verdict, verdict.reason) == ("invalid", "variant_fails_to_load")
    assert verdict.variant is not None and verdict.variant.kind == "invalid"
    assert exc_type in (verdict.detail or "")


@pytest.mark.parametrize("case", sorted(LOAD_FAILURES))
def test_an_original_that_fails_to_load_is_invalid(backend, case: str) -> None:
    original, _ = LOAD_FAILURES[case]
    verdict = verify_many([Pair(case, original, GOOD, "f", {"xs": ["a"]})], backend)[0]
    assert (verdict.verdict, verdict.reason) == ("invalid", "original_fails_to_load")


def test_missing_or_uncallable_entry_point_is_invalid(backend) -> None:
    pairs = [Pair("missing", GOOD, "def g(xs):\n    return 0\n", "f", {"xs": []}),
             Pair("not_callable", GOOD, "f = 3\n", "f", {"xs": []}),
             Pair("unbindable", GOOD, "def f(ys):\n    return 0\n", "f", {"xs": []})]
    reasons = {v.id: (v.verdict, v.reason) for v in verify_many(pairs, backend)}
    assert reasons == {"missing": ("invalid", "variant_no_entry_point"),
                       "not_callable": ("invalid", "variant_no_entry_point"),
                       "unbindable": ("invalid", "signature_changed")}


def test_an_exception_raised_by_the_call_is_still_an_outcome(backend) -> None:
    """The rule is about loading only: a call that raises TypeError still diverges from one that returns."""
    variant = "from typing import List\n\ndef f(xs: List[str]) -> int:\n    return len(xs) + 'a'\n"
    verdict = verify_many([Pair("call", GOOD, variant, "f", {"xs": ["a"]})], backend)[0]
    assert (verdict.verdict, verdict.reason) == ("diverges", "value_vs_exception")
    assert verdict.variant.type == "TypeError"


def test_problem_validation_names_a_reference_that_fails_to_load(local_backend) -> None:
    broken, _ = LOAD_FAILURES["annotation"]
    problems = [Problem("t", "ok", GOOD, "assert f(['a']) == 1\n", "f"),
                Problem("t", "broken", broken, "assert f(['a']) == 1\n", "f"),
                Problem("t", "wrong", GOOD, "assert f(['a']) == 2\n", "f")]
    validate(problems, local_backend)
    assert [p.reason for p in problems] == [None, "original_fails_to_load", "fails_own_tests:AssertionError"]


def test_failing_tests_are_not_a_load_failure(local_backend) -> None:
    """In a validation script the tests run after the module loaded: their failure is the tests' outcome."""
    outcome = run_tests(local_backend, [(GOOD, "raise SystemExit(1)\n")])[0]
    assert outcome.kind == "raised"


def test_sinq_verify_reports_a_load_failure_as_invalid(tmp_path, local_backend) -> None:
    """The user-facing path: `sinq verify` on the exact defect seen in real data (a mutated annotation)."""
    import json
    import os
    import subprocess
    import sys

    variant, _ = LOAD_FAILURES["annotation"]
    source = tmp_path / "pairs.jsonl"
    source.write_text(json.dumps({"id": "a", "original": GOOD, "variant": variant, "entry_point": "f",
                                  "input": {"xs": ["a"]}}) + "\n")
    done = subprocess.run([sys.executable, "-m", "sinq.cli", "verify", str(source), "--json"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "SINQ_CONFIG": ""})
    line = json.loads(done.stdout.splitlines()[0])
    assert (line["verdict"], line["reason"]) == ("invalid", "variant_fails_to_load")
    assert "TypeError" in line["detail"]
