"""The hostile suite on the local backend: every case contained, the verdict right, the host untouched."""

from __future__ import annotations

import pytest

from sinq.sandbox.hostile import CASES, run_selftest


@pytest.fixture(scope="module")
def selftest(local_backend):
    return run_selftest(local_backend)


def test_suite_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", [c.name for c in CASES] + ["pool_health"])
def test_case_is_contained(selftest, case: str) -> None:
    problems = [f["why"] for f in selftest["failures"] if f["case"] == case]
    assert problems == []


def test_no_worker_had_to_be_replaced(selftest) -> None:
    assert selftest["contained"] == selftest["cases"]
    assert selftest["replaced_workers"] == 0


def test_isolation_is_complete(local_backend) -> None:
    from sinq.sandbox.local import isolation_problems

    assert isolation_problems(local_backend.info()) == []
