"""The model-free baselines on real HumanEval problems through the real sandbox."""

from __future__ import annotations

import ast

from sinq.agents.base import EvaluatorRequest, GeneratorRequest
from sinq.agents.baselines import FuzzEvaluator, MutationGenerator
from sinq.agents.config import BaselineConfig
from sinq.agents.mutation import OPERATORS, mutants
from sinq.agents.search import candidates
from sinq.sandbox import Pair, verify_many
from sinq.sources.loaders import load
from sinq.tasks.baseline_round import baseline_round
from sinq.tasks.validation import validate

SMALL = BaselineConfig(search_budget=12, max_mutants=6)


def test_at_least_ten_operator_kinds_and_each_mutant_changes_the_program() -> None:
    assert len(OPERATORS) >= 10
    code = ("def f(xs, k):\n    total = 0\n    for i in range(len(xs)):\n        if xs[i] > k and i % 2 == 0:\n"
            "            total += xs[i] * 2\n        elif xs[i] == k:\n            continue\n    return total\n")
    found = list(mutants(code, "f"))
    kinds = {name for name, _ in found}
    assert len(kinds) >= 9
    original = ast.dump(ast.parse(code))
    assert all(ast.dump(ast.parse(source)) != original for _, source in found)


def _load_time_parts(source: str) -> list[str]:
    """Every annotation and decorator of a module, unparsed, in walk order."""
    parts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            parts += [ast.unparse(d) for d in node.decorator_list]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            parts.append(ast.unparse(node.returns))
        if isinstance(node, ast.arg) and node.annotation is not None:
            parts.append(ast.unparse(node.annotation))
        if isinstance(node, ast.AnnAssign):
            parts.append(ast.unparse(node.annotation))
    return parts


def test_mutants_never_touch_annotations_or_decorators() -> None:
    code = ("import functools\nfrom typing import List, Tuple\n\n@functools.lru_cache(maxsize=2 + 1)\n"
            "def f(xs: Tuple[int, ...], k: 'List[str]' = 1) -> List[int + 0]:\n    total: int = 0\n"
            "    def inner(y: List[int] = [k + 1]) -> 1 + 1:\n        return y\n"
            "    for x in xs:\n        total += x * k\n    return [total]\n")
    found = list(mutants(code, "f"))
    assert len({name for name, _ in found}) >= 3
    assert all(_load_time_parts(source) == _load_time_parts(code) for _, source in found)


def test_no_humaneval_mutant_changes_a_load_time_part() -> None:
    """The real seed source: 164 problems, every mutant keeps every annotation and decorator as it was."""
    problems = load("humaneval")
    checked = 0
    for problem in problems:
        expected = _load_time_parts(problem.code)
        for _, source in mutants(problem.code, problem.entry_point):
            assert _load_time_parts(source) == expected, problem.source_id
            checked += 1
    assert checked > 1000


def test_candidates_are_distinct_literals_derived_from_the_seeds() -> None:
    produced = list(candidates(["{'xs': [1, 2, 3], 'k': 2}", "{'xs': [], 'k': 0}"], budget=30, seed=1))
    assert len(produced) == len(set(produced)) == 30
    assert produced[0] == "{'xs': [1, 2, 3], 'k': 2}"
    assert all(isinstance(ast.literal_eval(p), dict) for p in produced)
    assert produced == list(candidates(["{'xs': [1, 2, 3], 'k': 2}", "{'xs': [], 'k': 0}"], budget=30, seed=1))


def test_generator_pairs_are_verified_divergences(local_backend) -> None:
    problems = [p for p in validate(load("humaneval", limit=6), local_backend) if p.reason is None]
    samples = MutationGenerator(local_backend, SMALL).generate([GeneratorRequest(p, 5, 1) for p in problems])
    good = [(p, s) for p, group in zip(problems, samples, strict=True) for s in group if s.reason is None]
    assert len(good) >= 4
    verdicts = verify_many([Pair(str(i), p.program, s.program, p.entry_point, s.input)
                            for i, (p, s) in enumerate(good)], local_backend)
    assert all(v.verdict == "diverges" for v in verdicts)
    assert all(len([s for s in group if s.reason is None]) <= 1 for group in samples)


def test_equivalent_variant_gets_no_answers_from_the_fuzzer(local_backend) -> None:
    original = "def f(x):\n    return x * 2\n"
    request = EvaluatorRequest("p", original, "def f(x):\n    return x + x\n", "f", 3, ["{'x': 3}"])
    different = EvaluatorRequest("q", original, "def f(x):\n    return x * 2 if x != 4 else 0\n", "f", 3,
                                 ["{'x': 3}"])
    same, differs = FuzzEvaluator(local_backend, SMALL).evaluate([request, different])
    assert [a.input for a in same] == [None, None, None] and {a.reason for a in same} == {"no_difference_found"}
    assert all(a.equivalent is True for a in same), "finding nothing, the fuzz evaluator says Yes"
    assert len(differs) == 3 and differs[0].input == "{'x': 4}"


def test_baseline_round_yields_pairs_with_difficulty(local_backend) -> None:
    result = baseline_round(load("humaneval", limit=5), local_backend, config=SMALL)
    assert result["problems"] == 5
    assert result["with_pair"] >= 3 and result["yield"] == result["with_pair"] / 5
    assert sum(result["difficulty_histogram"].values()) == result["evaluated_pairs"] == result["verified_pairs"]


def test_agents_baseline_cli_takes_its_figures_from_the_config(tmp_path, local_backend) -> None:
    import json
    import subprocess
    import sys

    config = tmp_path / "sinq.toml"
    config.write_text("[agents]\nanswers = 2\n[agents.baseline]\nsearch_budget = 8\nmax_mutants = 3\n")
    done = subprocess.run([sys.executable, "-m", "sinq.cli", "agents", "baseline", "--limit", "2", "--json",
                           "--config", str(config)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["problems"] == 2 and result["with_pair"] >= 1
    assert set(result["difficulty_histogram"]) <= {"0", "5", "10"}  # two answers: 0, 5 or 10
