"""The baseline generator's search economy (issue 14, item 1), in the real sandbox: line coverage of the original
per candidate input, mutants skipped where no candidate reaches them, timeouts relative to the original's runtime,
the early stop, and on real HumanEval problems at least the pairs the exhaustive search finds."""

from __future__ import annotations

from collections import Counter

import pytest

from sinq.agents.base import GeneratorRequest
from sinq.agents.baselines import MutationGenerator, line_coverage, relative_timeout
from sinq.agents.config import BaselineConfig
from sinq.agents.mutation import mutant_sites, mutants
from sinq.agents.search import candidates
from sinq.sources.loaders import load
from sinq.sources.problem import Problem
from sinq.tasks.validation import validate

BRANCHES = """\
def f(x):
    if x > 0:
        return 1
    y = -x
    return y
"""

GUARDED = """\
def f(x):
    if x == 123456789:
        return x * 3 + 7
    return x + 1
"""

OLD = BaselineConfig(coverage_skip=False, early_stop=False, search_timeout_factor=0)
"""The search before issue 14: every picked mutant on every candidate input, the cap as the only timeout."""


def problem(code: str, seeds: list[str], setup: str = "") -> Problem:
    return Problem(source="test", source_id=code[:20], code=code, tests="", entry_point="f", setup_code=setup,
                   seed_inputs=seeds)


def search_counts(groups) -> Counter:
    total: Counter = Counter()
    for group in groups:
        for sample in group:
            total.update(sample.meta.get("search", {}))
    return total


def test_coverage_lines_are_exactly_the_lines_run(local_backend) -> None:
    """Line 1 is the function's call event; the branch taken decides the rest."""
    limits = local_backend.config.limits
    runs = [(BRANCHES, "f", "{'x': 1}"), (BRANCHES, "f", "{'x': -1}"), (BRANCHES, "f", "{'y': 1}")]
    covered = line_coverage(local_backend, limits, runs)
    assert [lines for lines, _ in covered] == [{1, 2, 3}, {1, 2, 4, 5}, frozenset()]
    assert all(runtime is not None and 0 < runtime < limits.timeout_s for _, runtime in covered)


def test_coverage_is_unknown_when_program_code_would_run_after_the_call(local_backend) -> None:
    """A returned object of the program's own class is encoded by running its methods: no line may be ruled out."""
    code = "class Box:\n    def __repr__(self):\n        return 'box'\n\ndef f(x):\n    return Box()\n"
    covered = line_coverage(local_backend, local_backend.config.limits, [(code, "f", "{'x': 1}")])
    assert covered[0][0] is None


def test_mutant_sites_match_mutants_and_span_their_lines() -> None:
    sites = list(mutant_sites(GUARDED, "f"))
    assert [(name, source) for name, source, _ in sites] == list(mutants(GUARDED, "f"))
    assert {span for _, _, span in sites} <= {(2, 2), (3, 3), (4, 4)}
    unreached = [source for _, source, span in sites if span == (3, 3)]
    assert unreached and all("123456789" in source for source in unreached)


def test_a_mutant_no_input_reaches_is_skipped_and_a_reached_one_tried(local_backend) -> None:
    target = problem(GUARDED, ["{'x': 5}", "{'x': 9}"])
    sites = list(mutant_sites(GUARDED, "f"))
    config = BaselineConfig(early_stop=False, max_mutants=len(sites))
    groups = MutationGenerator(local_backend, config).generate([GeneratorRequest(target, 5, len(sites))])
    counts = search_counts(groups)
    unreached = {source for _, source, span in sites if span == (3, 3)}
    tried = {sample.program for sample in groups[0]}
    assert counts["skipped_unreached"] == len(unreached) > 0
    assert not tried & unreached
    assert {source for _, source, span in sites if span == (4, 4)} <= tried
    assert any(sample.reason is None for sample in groups[0])


def test_skipping_follows_the_setup_code_offset(local_backend) -> None:
    """The program runs setup code first: coverage lines are the program's, spans the code's."""
    target = problem(GUARDED, ["{'x': 5}"], setup="import math\nimport os")
    sites = list(mutant_sites(GUARDED, "f"))
    config = BaselineConfig(early_stop=False, max_mutants=len(sites))
    groups = MutationGenerator(local_backend, config).generate([GeneratorRequest(target, 5, len(sites))])
    assert search_counts(groups)["skipped_unreached"] == sum(span == (3, 3) for _, _, span in sites)


def test_relative_timeout_is_clamped_between_floor_and_cap(local_backend) -> None:
    config = BaselineConfig(search_timeout_factor=20, search_timeout_floor_s=0.1, search_timeout_s=0.5)
    assert relative_timeout(config, [0.001, 0.002]) == pytest.approx(0.1)
    assert relative_timeout(config, [0.001, 0.012]) == pytest.approx(0.24)
    assert relative_timeout(config, [0.2]) == pytest.approx(0.5)
    assert relative_timeout(config, [None]) == pytest.approx(0.5)
    assert relative_timeout(config.model_copy(update={"search_timeout_factor": 0}), [0.001]) == pytest.approx(0.5)
    slow = "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
    seeds = ["{'n': 20000}"]
    inputs = list(candidates(seeds, config.search_budget, config.seed, boundary_first=True))
    measured = line_coverage(local_backend, local_backend.config.limits, [(slow, "f", x) for x in inputs])
    expected = relative_timeout(config, [runtime for _, runtime in measured])
    assert 0.1 <= expected <= 0.5
    groups = MutationGenerator(local_backend, config).generate([GeneratorRequest(problem(slow, seeds), 5, 1)])
    assert groups[0][0].meta["search_timeout_s"] == pytest.approx(expected)


def test_early_stop_stops_after_n_pairs(local_backend) -> None:
    code = "def f(xs, k):\n    total = 0\n    for x in xs:\n        total += x * k\n    return total - len(xs)\n"
    target = problem(code, ["{'xs': [1, 2, 3], 'k': 2}", "{'xs': [5], 'k': -1}"])
    found = {}
    for n in (1, 2):
        groups = MutationGenerator(local_backend, BaselineConfig()).generate([GeneratorRequest(target, 5, n)])
        counts = search_counts(groups)
        assert sum(sample.reason is None for sample in groups[0]) == n
        assert counts["not_searched_early_stop"] > 0
        found[n] = counts["search_runs"]
    groups = MutationGenerator(local_backend, BaselineConfig(early_stop=False)).generate(
        [GeneratorRequest(target, 5, 1)])
    assert found[1] < found[2] < search_counts(groups)["search_runs"]


def test_humaneval_yield_is_at_least_the_exhaustive_search(local_backend) -> None:
    """10 real problems, same seed: the economical search keeps every pair the old one finds, for less."""
    problems = [p for p in validate(load("humaneval", limit=10), local_backend) if p.reason is None]
    requests = [GeneratorRequest(p, 5, 1) for p in problems]
    old = MutationGenerator(local_backend, OLD).generate(requests)
    new = MutationGenerator(local_backend, BaselineConfig()).generate(requests)
    good_old = [[s.program for s in group if s.reason is None] for group in old]
    good_new = [[s.program for s in group if s.reason is None] for group in new]
    assert sum(map(len, good_new)) >= sum(map(len, good_old)) >= 8
    assert all(len(b) >= len(a) for a, b in zip(good_old, good_new, strict=True))
    assert search_counts(new)["search_runs"] * 3 < search_counts(old)["search_runs"]
