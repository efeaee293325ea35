"""The ``equivalence`` suite (issue 15, item 6): labelled program pairs from files (column map, label values) and
from our own frozen held-out pairs, the model-free fuzz evaluator answering through the real sandbox, figures per
class checked against items whose answers are known by hand, runs stored in a real DuckDB file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from sinq.agents.baselines import FuzzEvaluator
from sinq.agents.config import BaselineConfig
from sinq.evals import equivalence as suite
from sinq.evals.common import EvalError, record
from sinq.evals.config import EquivalenceColumns, EquivalenceEvalConfig, EvalConfig, GateSuite
from sinq.warehouse.store import Warehouse

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "equivalence_pairs.jsonl"

DOUBLE = ("def f(x):\n    return x + x\n", "def f(x):\n    return 2 * x\n")
"""Equivalent on every int: the fuzzer cannot break it, its answer is Yes (right)."""
DROP_FIRST = ("def total(xs):\n    return sum(xs)\n", "def total(xs):\n    return sum(xs[1:])\n")
"""Inequivalent on the seed input itself: the fuzzer's No carries a diverging input (right)."""
RARE = ("def g(n):\n    return n * 3\n", "def g(n):\n    if n == 48611:\n        return 0\n    return n * 3\n")
"""Inequivalent on one int the fuzzer never tries: its answer is Yes (a miss)."""


def _row(pair: tuple[str, str], label: object, ident: str, inputs: list[dict]) -> dict:
    return {"id": ident, "program_1": pair[0], "program_2": pair[1], "label": label, "inputs": inputs}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def fuzz(local_backend):
    return FuzzEvaluator(local_backend, BaselineConfig())


def test_a_file_run_on_the_fuzz_evaluator_scores_each_class(local_backend, fuzz, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "pairs.jsonl", [
        _row(DOUBLE, "equivalent", "double", [{"x": 3}]),
        _row(DROP_FIRST, "inequivalent", "drop", [{"xs": [1, 2, 3]}]),
        _row(RARE, "inequivalent", "rare", [{"n": 2}])])
    config = EvalConfig()
    loaded = suite.load_files([path], config.equivalence)
    assert [(it.row, it.kind, it.entry_point) for it in loaded.items] == [
        ("pairs.jsonl:double", "equivalent", "f"), ("pairs.jsonl:drop", "inequivalent", "total"),
        ("pairs.jsonl:rare", "inequivalent", "g")]
    run = suite.evaluate(local_backend, loaded, fuzz, config, model="baseline:fuzz")
    by_row = {r.detail["row"]: r for r in run.results}
    assert by_row["pairs.jsonl:double"].detail["predicted"] is True and by_row["pairs.jsonl:double"].correct
    drop = by_row["pairs.jsonl:drop"].detail
    assert (drop["predicted"], drop["diverged"], by_row["pairs.jsonl:drop"].correct) == (False, True, True)
    assert drop["verdict"].startswith("diverges")
    rare = by_row["pairs.jsonl:rare"]
    assert (rare.detail["predicted"], rare.correct, rare.detail["outcome"]) == (True, False, "missed")
    m = run.metrics
    assert next(iter(m)) == "accuracy"
    assert (m["accuracy"]["k"], m["accuracy"]["n"]) == (2, 3)
    assert (m["recall_equivalent"]["k"], m["recall_equivalent"]["n"]) == (1, 1)
    assert (m["recall_inequivalent"]["k"], m["recall_inequivalent"]["n"]) == (1, 2)
    assert m["false_alarm_rate"]["value"] == 0.0 and m["miss_rate"]["value"] == 0.5
    assert m["witnessed_rate"]["value"] == 0.5 and m["answered"]["value"] == 1.0
    assert m["accuracy"]["value"] == pytest.approx(2 / 3)
    assert m["accuracy"]["low"] < m["accuracy"]["value"] < m["accuracy"]["high"]
    assert m["accuracy@file:pairs.jsonl"]["n"] == 3
    assert run.detail["by_label"] == {"equivalent": 1, "inequivalent": 2} and run.detail["relabelled"] == 0

    warehouse = Warehouse(tmp_path / "w.duckdb")
    eval_id = record(warehouse, run)
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        [(suite_name, n, metrics)] = con.execute("SELECT suite, n, metrics FROM eval_runs WHERE eval_id = ?",
                                                 [eval_id]).fetchall()
        stored = con.execute("SELECT count(*), count(*) FILTER (WHERE correct) FROM eval_results WHERE eval_id = ?",
                             [eval_id]).fetchall()
        items = con.execute("SELECT count(*) FROM eval_items WHERE suite = 'equivalence'").fetchall()
    finally:
        con.close()
    assert (suite_name, n, json.loads(metrics)["recall_inequivalent"]["value"]) == ("equivalence", 3, 0.5)
    assert stored == [(3, 2)] and items == [(3,)]


def test_a_diverging_no_on_a_pair_labelled_equivalent_relabels_it(local_backend, fuzz, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "wrong.jsonl", [_row(DROP_FIRST, "equal", "mislabelled", [{"xs": [1, 2, 3]}]),
                                             _row(DOUBLE, "equal", "double", [{"x": 1}])])
    run = suite.evaluate(local_backend, suite.load_files([path], EquivalenceEvalConfig()), fuzz, EvalConfig())
    first = next(r for r in run.results if r.detail["row"] == "wrong.jsonl:mislabelled")
    assert (first.detail["kind"], first.detail["truth"], first.detail["outcome"], first.correct) == (
        "equivalent", "inequivalent", "refuted", True)
    assert run.detail["relabelled"] == 1 and run.detail["relabelled_items"] == ["wrong.jsonl:mislabelled"]
    assert run.metrics["recall_inequivalent"]["n"] == 1 and run.metrics["recall_equivalent"]["n"] == 1
    assert run.metrics["false_alarm_rate"]["value"] == 0.0


def test_a_column_map_and_label_values_read_csv_and_json(tmp_path: Path) -> None:
    csv_path = tmp_path / "pairs.csv"
    import csv

    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["left", "right", "verdict", "fn", "seeds"])
        writer.writeheader()
        writer.writerow({"left": DOUBLE[0], "right": DOUBLE[1], "verdict": "Equal", "fn": "f",
                         "seeds": "[{'x': 2}, {'x': -5}]"})
        writer.writerow({"left": DROP_FIRST[0], "right": DROP_FIRST[1], "verdict": "Inequal", "fn": "",
                         "seeds": ""})
    config = EquivalenceEvalConfig(columns=EquivalenceColumns(program_1="left", program_2="right", label="verdict",
                                                              id=None, entry_point="fn", inputs="seeds"),
                                   equivalent_labels=["equal"], inequivalent_labels=["inequal"])
    loaded = suite.load_files([csv_path], config)
    assert [(it.kind, it.label, it.entry_point, it.seed_inputs) for it in loaded.items] == [
        ("equivalent", "Equal", "f", ["{'x': 2}", "{'x': -5}"]), ("inequivalent", "Inequal", "total", [])]
    assert [it.row for it in loaded.items] == ["pairs.csv:2", "pairs.csv:7"]  # by first line, without an id

    numeric = _jsonl(tmp_path / "numeric.jsonl", [_row(DOUBLE, 1, "a", []), _row(DROP_FIRST, 0, "b", []),
                                                  _row(RARE, False, "c", []), {**_row(DOUBLE, True, "d", [])}])
    loaded = suite.load_files([numeric], EquivalenceEvalConfig())
    assert [it.kind for it in loaded.items] == ["equivalent", "inequivalent", "inequivalent"]
    assert (loaded.duplicates, loaded.conflicting) == (1, 0)  # d repeats a's programs
    array = tmp_path / "pairs.json"  # EquiBench's export: one JSON array
    array.write_text(json.dumps([{"pair_id": "p1", "program_1_code": DOUBLE[0], "program_2_code": DOUBLE[1],
                                  "label": "Equivalent"}]))
    equibench = EquivalenceEvalConfig(columns=EquivalenceColumns(program_1="program_1_code",
                                                                 program_2="program_2_code", id="pair_id"))
    [item] = suite.load_files([array], equibench).items
    assert (item.row, item.kind, item.entry_point) == ("pairs.json:p1", "equivalent", "f")


@pytest.mark.parametrize(("line", "message"), [
    ('{"program_1": "def f(x):\\n    return x\\n", "label": "equivalent"}', r"bad\.jsonl:2: no column 'program_2'"),
    ('{"program_1": "def f(x):\\n    return x\\n", "program_2": "def f(x):\\n    return x\\n", "label": "maybe"}',
     r"bad\.jsonl:2: label 'maybe' is in neither class"),
    ("not json", r"bad\.jsonl:2: not a JSON object"),
    ('{"program_1": "int main() { return 0; }", "program_2": "def f(): pass", "label": "1"}',
     r"bad\.jsonl:2: column 'program_1' is not a Python program"),
    ('{"program_1": "def f(x): pass\\ndef g(x): pass", "program_2": "def f(x): pass\\ndef g(x): pass", '
     '"label": "1"}', r"bad\.jsonl:2: no entry point column and not one top-level function .*\(f, g\)"),
    ('{"program_1": "def f(x): pass", "program_2": "def h(x): pass", "label": "1", "entry_point": "f"}',
     r"bad\.jsonl:2: entry point 'f' is not defined at the top level of both"),
    ('{"program_1": "def f(x): pass", "program_2": "def f(x): pass", "label": "1", "inputs": [[1, 2]]}',
     r"bad\.jsonl:2: column 'inputs' holds an input that is not a dict"),
])
def test_a_malformed_row_stops_the_run_naming_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps(_row(DOUBLE, "equivalent", "ok", []))
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n{line}\n")
    with pytest.raises(EvalError, match=message):
        suite.load_files([path], EquivalenceEvalConfig())


def test_files_that_cannot_be_read_and_labels_in_both_classes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="does not exist"):
        suite.load_files([tmp_path / "none.jsonl"], EquivalenceEvalConfig())
    (tmp_path / "pairs.txt").write_text("x")
    with pytest.raises(EvalError, match=r"give a \.jsonl, \.json, \.parquet or \.csv"):
        suite.load_files([tmp_path / "pairs.txt"], EquivalenceEvalConfig())
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(EvalError, match="holds no rows"):
        suite.load_files([tmp_path / "empty.jsonl"], EquivalenceEvalConfig())
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("program_1,program_2,label\na,b,1,extra\n")
    with pytest.raises(EvalError, match=r"ragged\.csv:2: more fields"):
        suite.load_files([ragged], EquivalenceEvalConfig())
    with pytest.raises(ValueError, match="label values in both classes"):
        EquivalenceEvalConfig(equivalent_labels=["same", "1"], inequivalent_labels=["1"])
    with pytest.raises(EvalError, match="no pairs to measure"):
        suite.gather(EvalConfig(), [], None)


def _warehouse_with_pairs(local_backend, tmp_path: Path) -> tuple[Warehouse, dict[str, str]]:
    """A held-out problem with one equivalent and one inequivalent pair, and a training problem with one pair of
    each kind too (never frozen)."""
    from sinq.sandbox.verify import Pair, verify_many
    from sinq.sources.problem import Problem
    from sinq.warehouse.records import equivalent_pair_rows, merge, pair_rows, problem_row, verdict_rows
    from tests.conftest import fast_config

    config, now = fast_config(), datetime.now(UTC)
    batch: dict[str, list[dict]] = {"problems": []}
    ids: dict[str, str] = {}
    for split, (original, same, different) in {
            "test": ("def f(x):\n    return x + x\n", "def f(x):\n    return 2 * x\n",
                     "def f(x):\n    return x + 1\n"),
            "train": ("def f(x):\n    return x * 3\n", "def f(x):\n    return x + x + x\n",
                      "def f(x):\n    return x * 4\n")}.items():
        problem = Problem("test", f"p-{split}", original, "assert f(1)", "f", split=split,
                          seed_inputs=["{'x': 1}", "{'x': 5}"])
        batch["problems"].append(problem_row(problem, "run-1", now))
        tried = [Pair(f"{split}-{i}", original, same, "f", literal) for i, literal in enumerate(["{'x': 1}",
                                                                                               "{'x': -4}"])]
        diverging = Pair(f"{split}-d", original, different, "f", "{'x': 3}")
        verdicts = verify_many([*tried, diverging], local_backend, config)
        equivalent = equivalent_pair_rows(list(zip(tried, verdicts[:2], strict=True)), "construction",
                                          ["algebra"], "maker:test", 0, problem.problem_id, f"s-{split}", "run-1",
                                          now, config)
        checked = verdict_rows(diverging, verdicts[2], "run-1", config.compare, now, config)
        inequivalent = {**checked, "pairs": pair_rows(checked, "generator:test", 0, problem.problem_id)}
        batch = merge(batch, equivalent, inequivalent)
        ids[f"{split}:equivalent"] = equivalent["pairs"][0]["pair_id"]
        ids[f"{split}:inequivalent"] = inequivalent["pairs"][0]["pair_id"]
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.store(batch)
    return warehouse, ids


def test_held_out_pairs_of_both_kinds_freeze_into_a_set_and_are_measured(local_backend, fuzz,
                                                                         tmp_path: Path) -> None:
    from sinq.sources.config import SplitConfig
    from sinq.training.decontam import load_items
    from sinq.warehouse.evals import list_sets

    warehouse, ids = _warehouse_with_pairs(local_backend, tmp_path)
    splits = SplitConfig(held_out_share=0.0)
    frozen = suite.freeze(warehouse, EquivalenceEvalConfig(), splits, name="test")
    assert frozen["created"] and frozen["by_kind"] == {"equivalent": 1, "inequivalent": 1}
    assert frozen["set_id"].startswith("equivalence-") and frozen["problems"] == 1
    again = suite.freeze(warehouse, EquivalenceEvalConfig(), splits)
    assert again["set_id"] == frozen["set_id"] and not again["created"]
    assert [s["set_id"] for s in list_sets(warehouse, "equivalence")] == [frozen["set_id"]]
    assert list_sets(warehouse, "game") == []

    loaded = suite.set_items(suite.frozen(warehouse))
    kinds = {it.row.split(":", 1)[1]: it.kind for it in loaded.items}
    assert kinds == {ids["test:equivalent"]: "equivalent", ids["test:inequivalent"]: "inequivalent"}
    assert all(it.seed_inputs == ["{'x': 1}", "{'x': 5}"] and it.entry_point == "f" for it in loaded.items)
    assert {i.suite for i in load_items(warehouse)} >= {"equivalence"}

    run = suite.evaluate(local_backend, loaded, fuzz, EvalConfig())
    assert run.metrics["recall_equivalent"]["value"] == 1.0 and run.metrics["recall_inequivalent"]["value"] == 1.0
    assert run.metrics[f"accuracy@warehouse:{frozen['set_id']}"]["n"] == 2
    assert run.detail["set_id"] == frozen["set_id"]

    both = suite.gather(EvalConfig(equivalence=EquivalenceEvalConfig(files=[EXAMPLE])), None, warehouse, splits)
    assert (len(both.items), both.duplicates) == (12 + 2 - 1, 1)  # the example's x + x pair is stored too
    assert both.sources[-1] == f"warehouse:{frozen['set_id']}"
    with pytest.raises(EvalError, match="not an equivalence set"):
        from sinq.warehouse.evals import store_set

        store_set(warehouse, {"set_id": "game-x", "suite": "game", "content_hash": "x", "pairs": 0, "problems": 0,
                              "detail": {}}, [])
        suite.frozen(warehouse, "game-x")


def test_nothing_held_out_freezes_nothing_and_the_gate_skips_it(local_backend, tmp_path: Path) -> None:
    from sinq.evals.suites import skip_reason
    from sinq.sources.config import SplitConfig

    warehouse, _ = _warehouse_with_pairs(local_backend, tmp_path)
    with pytest.raises(EvalError, match="no equivalent or verified pair of a held-out problem"):
        suite.freeze(warehouse, EquivalenceEvalConfig(), SplitConfig(held_out_share=0.0), held_out_splits=["x"])
    spec = GateSuite(suite="equivalence")
    assert spec.headline == "accuracy"
    assert "measures the evaluator" in skip_reason(spec, None, role="generator")
    assert skip_reason(spec, None, role="evaluator", warehouse=Warehouse(tmp_path / "none.duckdb")) is not None
    assert skip_reason(spec, None, role="evaluator", warehouse=warehouse,
                       splits=SplitConfig(held_out_share=0.0)) is None


def test_the_command_measures_the_baseline_on_the_example_file(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from sinq.eval_equivalence_cli import equivalence

    app = typer.Typer()
    app.command("equivalence")(equivalence)
    app.command("other")(lambda: None)
    db = tmp_path / "w.duckdb"
    result = CliRunner().invoke(app, ["equivalence", "--file", str(EXAMPLE), "--agent", "evaluator", "--db", str(db),
                                      "--no-warehouse", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    m = summary["metrics"]
    assert summary["model"] == "baseline:baseline-fuzz" and summary["n"] == 12
    assert (m["recall_equivalent"]["k"], m["recall_equivalent"]["n"]) == (6, 6)
    assert m["recall_inequivalent"]["n"] == 6 and 0 < m["recall_inequivalent"]["k"] < 6
    assert m["false_alarm_rate"]["value"] == 0.0
    bad = CliRunner().invoke(app, ["equivalence", "--file", str(EXAMPLE), "--label-column", "nope", "--agent",
                                   "evaluator", "--db", str(db)])
    assert bad.exit_code != 0 and "no column 'nope'" in str(bad.exception or bad.output)


def test_measure_runs_the_suite_on_an_llm_evaluator_and_skips_it_for_the_generator(local_backend, tiny_model,
                                                                                   tmp_path: Path) -> None:
    """The gate's path (``evals.suites.measure``): the real tiny model answers through the real loading code; its
    random text rarely parses, and a non-answer counts wrong, so the figures are checked for shape and bookkeeping."""
    from sinq.evals.suites import measure

    path = _jsonl(tmp_path / "pairs.jsonl", [_row(DOUBLE, "equivalent", "double", [{"x": 3}]),
                                             _row(DROP_FIRST, "inequivalent", "drop", [{"xs": [1, 2]}])])
    warehouse = Warehouse(tmp_path / "w.duckdb")
    spec = GateSuite(suite="equivalence", file=path)
    greedy = EvalConfig(equivalence=EquivalenceEvalConfig(max_tokens=16, answers=2))
    with pytest.raises(EvalError, match="one greedy answer repeated"):
        measure(warehouse, local_backend, greedy, "evaluator", str(tiny_model), None, [spec])
    config = EvalConfig(equivalence=EquivalenceEvalConfig(max_tokens=16, answers=2, temperature=1.0))
    [found] = measure(warehouse, local_backend, config, "evaluator", str(tiny_model), None, [spec])
    assert found["suite"] == "equivalence" and found["headline"] == "accuracy" and found["n"] == 4
    metrics = found["metrics"]
    assert metrics["recall_equivalent"]["n"] == 2 and metrics["recall_inequivalent"]["n"] == 2
    assert metrics["answered"]["k"] + found["detail"]["non_answers"] == 4
    assert found["detail"]["evaluator"] and found["detail"]["sources"] == [str(path)]
    [skipped] = measure(warehouse, local_backend, config, "generator", str(tiny_model), None, [spec])
    assert "measures the evaluator" in skipped["skipped"]
