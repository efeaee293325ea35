"""The surface-leakage measurement (issue 27): `sinq train bench-leakage` through the real command on a real DuckDB
warehouse, whose pairs are made from real sandbox verdicts and planted so the answer is known.

- run ``marker``: the kinds differ by a surface marker only (an inequivalent variant swaps the operands of a ``-``,
  an equivalent one renames a local to ``idx_<digits>``): the classifier must find it (accuracy >= 0.9);
- run ``random``: both kinds made the same way (every variant swaps the operands of one binary operation: ``+`` and
  ``*`` are equivalent, ``-`` diverges at x = y = 0), labels a seeded shuffle: nothing to find, so the accuracy stays
  near the majority rate;
- run ``disguised``: equivalent pairs of the marker run's programs made like its inequivalent ones (a ``+`` swapped):
  their kind hides behind the surface, so they land in the hard split.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinq.sandbox.verify import Pair, verify_many
from sinq.sources.problem import Problem
from sinq.warehouse.records import content_id, equivalent_pair_rows, merge, pair_rows, problem_row, verdict_rows
from sinq.warehouse.store import Warehouse
from tests.conftest import fast_config

MARKER_PROBLEMS = 24
RANDOM_PROBLEMS = 30
DISGUISED = 4
ZERO = "{'x': 0, 'y': 0}"
FUZZ = [ZERO, "{'x': 3, 'y': -2}", "{'x': -5, 'y': 7}"]


def _marker_original(i: int) -> str:
    return f"def f(x, y):\n    a = x - {i + 2}\n    b = y + {i + 5}\n    return a * b\n"


def _random_program(j: int, ops: tuple[str, str], swapped: int | None = None) -> str:
    """Two sites ``u = x op K`` and ``v = y op K``; ``swapped`` (0 or 1) writes that site as ``K op name``."""
    sites = []
    for site, (name, target, constant) in enumerate((("x", "u", j + 3), ("y", "v", 2 * j + 11))):
        left, right = (constant, name) if site == swapped else (name, constant)
        sites.append(f"    {target} = {left} {ops[site]} {right}\n")
    return f"def g(x, y):\n{''.join(sites)}    return u + v * 2\n"


def _sinq(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sinq.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={**os.environ, "SINQ_CONFIG": "", "COLUMNS": "200"})


@pytest.fixture(scope="module")
def planted(local_backend, tmp_path_factory) -> dict:
    """The three runs above in one warehouse; every inequivalent pair diverges on x = y = 0 and has a sample and a
    difficulty label (so training sets can be built from it), every equivalent pair is equal on every fuzzed input."""
    config = fast_config()
    now = datetime.now(UTC)
    tmp = tmp_path_factory.mktemp("leakage")
    planned: list[tuple[str, Problem, str, str]] = []  # (run, problem, variant, kind)
    for i in range(MARKER_PROBLEMS):
        original = _marker_original(i)
        problem = Problem("unit", f"marker-{i}", original, "", "f")
        planned.append(("marker", problem, original.replace(f"x - {i + 2}", f"{i + 2} - x"), "inequivalent"))
        planned.append(("marker", problem, original.replace("b", f"idx_{100 + i}"), "equivalent"))
        if i < DISGUISED:
            planned.append(("disguised", problem, original.replace(f"y + {i + 5}", f"{i + 5} + y"), "equivalent"))
    labels = ["equivalent"] * 24 + ["inequivalent"] * 36
    random.Random(27).shuffle(labels)
    for j in range(RANDOM_PROBLEMS):
        kinds = labels[2 * j: 2 * j + 2]
        ops = tuple(random.Random(j).choice("+*") if kind == "equivalent" else "-" for kind in kinds)
        problem = Problem("unit", f"random-{j}", _random_program(j, ops), "", "g")
        for site, kind in enumerate(kinds):
            planned.append(("random", problem, _random_program(j, ops, swapped=site), kind))

    checks = [Pair(f"{n}-{x}", problem.code, variant, problem.entry_point, literal)
              for n, (_, problem, variant, kind) in enumerate(planned)
              for x, literal in enumerate([ZERO] if kind == "inequivalent" else FUZZ)]
    verdicts = dict(zip((p.id for p in checks), verify_many(checks, local_backend, config), strict=True))
    problems = {problem.problem_id: problem for _, problem, _, _ in planned}
    batch: dict[str, list[dict]] = {
        "runs": [{"run_id": run, "kind": "nightly", "status": "completed", "started_at": now}
                 for run in ("marker", "random", "disguised")],
        "problems": [problem_row(p, "marker", now) for p in problems.values()],
        "samples": [], "difficulty_labels": []}
    pairs: dict[str, dict] = {}
    for n, (run, problem, variant, kind) in enumerate(planned):
        tried = [(p, verdicts[p.id]) for p in checks if p.id.startswith(f"{n}-")]
        if kind == "inequivalent":
            [(pair, verdict)] = tried
            assert verdict.verdict == "diverges", (variant, verdict)
            rows = verdict_rows(pair, verdict, run, config.compare, now, config)
            sample_id = content_id("sample", problem.problem_id, n)
            [row] = pair_rows(rows, "generator:test", 0, problem.problem_id, sample_id)
            batch["samples"].append({
                "sample_id": sample_id, "problem_id": problem.problem_id, "agent_id": "generator:test", "round": 0,
                "target_difficulty": 5, "program_id": rows["programs"][1]["program_id"],
                "input_id": rows["inputs"][0]["input_id"], "status": "valid", "detail": "swap", "run_id": run,
                "created_at": now})
            batch["difficulty_labels"].append({
                "pair_id": row["pair_id"], "evaluator_agent_id": "evaluator:test", "round": 0, "n_answers": 3,
                "n_failures": 1, "difficulty": 3, "run_id": run, "created_at": now})
            batch = merge(batch, rows, {"pairs": [row]})
        else:
            assert {v.verdict for _, v in tried} == {"same"}, variant
            made = equivalent_pair_rows(tried, "construction", ["planted"], "maker:test", 0, problem.problem_id,
                                        None, run, now, config)
            row = made["pairs"][0]
            batch = merge(batch, made)
        pairs[row["pair_id"]] = {"run": run, "kind": kind, "problem_id": problem.problem_id, "variant": variant}
    db = tmp / "w.duckdb"
    Warehouse(db).store(batch)
    assert len(pairs) == len(planned)
    return {"db": db, "pairs": pairs, "tmp": tmp}


def _bench(planted: dict, *args: str) -> subprocess.CompletedProcess:
    return _sinq("train", "bench-leakage", "--db", str(planted["db"]), *args, cwd=planted["tmp"])


def _figures(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_surface_marker_is_found(planted) -> None:
    figures = _figures(_bench(planted, "--run", "marker", "--json"))
    assert figures["pairs"] == 2 * MARKER_PROBLEMS and figures["run"] == "marker"
    assert figures["kinds"] == {"inequivalent": MARKER_PROBLEMS, "equivalent": MARKER_PROBLEMS}
    assert figures["majority"] == 0.5
    accuracy = figures["accuracy"]
    assert accuracy["value"] >= 0.9 and accuracy["low"] <= accuracy["value"] <= accuracy["high"]
    assert accuracy["n"] == figures["pairs"] and figures["target"]["met"] is False
    groups = figures["by_feature_group"]
    assert set(groups) == {"diff", "tokens", "identifiers", "ast", "length"}
    assert groups["identifiers"]["alone"]["value"] >= 0.9, "the marker is a name: identifiers alone see it"
    assert all({"value", "low", "high"} <= set(g["alone"]) | set(g["without"]) for g in groups.values())
    assert figures["strongest_features"][0]["accuracy"] >= 0.9, "one figure alone gives the kind away"


def test_same_made_kinds_stay_near_the_majority_rate(planted) -> None:
    figures = _figures(_bench(planted, "--run", "random", "--json", "--check"))
    assert figures["pairs"] == 2 * RANDOM_PROBLEMS and figures["kinds"] == {"inequivalent": 36, "equivalent": 24}
    assert figures["majority"] == 0.6 and figures["majority_kind"] == "inequivalent"
    assert abs(figures["accuracy"]["value"] - figures["majority"]) <= 0.15, figures["accuracy"]
    assert figures["target"]["met"] is True  # --check exits 0 only then


def test_the_hard_split_holds_only_what_the_classifier_got_wrong(planted) -> None:
    hard, predictions = planted["tmp"] / "hard.jsonl", planted["tmp"] / "predictions.jsonl"
    figures = _figures(_bench(planted, "--json", "--hard-split", str(hard), "--predictions", str(predictions)))
    every, wrong = _lines(predictions), _lines(hard)
    assert len(every) == figures["pairs"] == len(planted["pairs"]) and len(wrong) == figures["hard_split"]
    assert figures["accuracy"]["k"] == figures["pairs"] - len(wrong)
    assert {p["pair_id"] for p in wrong} == {p["pair_id"] for p in every if p["predicted"] != p["kind"]}
    assert all(not p["correct"] and p["kind"] == planted["pairs"][p["pair_id"]]["kind"] for p in wrong)
    disguised = {pid for pid, p in planted["pairs"].items() if p["run"] == "disguised"}
    renamed = {pid for pid, p in planted["pairs"].items() if p["run"] == "marker" and p["kind"] == "equivalent"}
    found = {p["pair_id"] for p in wrong}
    assert disguised <= found, "equivalent pairs that look like the inequivalent ones are hard"
    assert not renamed & found, "a renamed-to-idx_N pair gives itself away: never hard"


def test_folds_are_grouped_by_problem(planted) -> None:
    predictions = planted["tmp"] / "grouped.jsonl"
    _figures(_bench(planted, "--json", "--folds", "4", "--seed", "3", "--predictions", str(predictions)))
    folds: dict[str, set[int]] = {}
    for p in _lines(predictions):
        folds.setdefault(p["problem_id"], set()).add(p["fold"])
    assert all(len(f) == 1 for f in folds.values()), "a problem's pairs sit in one fold"
    sizes = {pid: sum(p["problem_id"] == pid for p in planted["pairs"].values()) for pid in folds}
    assert max(sizes.values()) >= 3 and {f for fs in folds.values() for f in fs} == {0, 1, 2, 3}


def test_too_few_pairs_or_programs_are_refused(planted) -> None:
    few = _bench(planted, "--run", "disguised", "--folds", "2", "--json")  # 4 equivalent pairs, no inequivalent
    assert few.returncode == 2 and few.stdout == ""
    assert "too few pairs" in few.stderr and len(few.stderr.strip().splitlines()) <= 2, few.stderr
    folds = _bench(planted, "--run", "random", "--folds", str(RANDOM_PROBLEMS + 1), "--json")
    assert folds.returncode == 2 and "seed programs" in folds.stderr, folds.stderr
    unknown = _bench(planted, "--run", "no-such-run", "--json")
    assert unknown.returncode == 2 and "no run" in unknown.stderr, unknown.stderr


def test_train_build_hard_only_keeps_hard_pairs(planted) -> None:
    hard = planted["tmp"] / "hard-build.jsonl"
    _figures(_bench(planted, "--json", "--hard-split", str(hard)))
    wanted = {p["pair_id"] for p in _lines(hard)}
    done = _sinq("train", "build", "grpo", "--role", "evaluator", "--hard-only", "--equivalent-share", "1.0",
                 "--include-contaminated", "--db", str(planted["db"]), "--json", cwd=planted["tmp"])
    result = _figures(done)
    assert result["hard_pairs"] == len(wanted) and result["removed"].get("surface_easy", 0) > 0
    import pyarrow.parquet as pq

    kept = set(pq.read_table(Path(result["path"]) / "train.parquet").column("pair_id").to_pylist())
    assert kept and kept <= wanted
    assert "surface_easy" in (Path(result["path"]) / "README.md").read_text()
