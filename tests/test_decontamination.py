"""What reaches a training set: held-out problems never, duplicates, flagged variants and rows overlapping an
evaluation item only when asked; the card and the training_sets row say what was left out and why; an evaluation
can ask which of its items a registered set touched. Rows are planted in a real DuckDB file with Warehouse.store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from sinq.sources.config import SplitConfig
from sinq.sources.splits import split_of
from sinq.training.config import BuildConfig, DecontaminationConfig
from sinq.training.datasets import HeldOutLeak, select, snapshot, write_snapshot
from sinq.training.decontam import (
    EvalIndex,
    benchmark_items,
    contaminated_items,
    load_items,
    make_item,
    register_benchmark,
    register_items,
)
from sinq.warehouse.records import content_id, input_row, program_row
from sinq.warehouse.store import Warehouse

NOW = datetime(2025, 1, 1, tzinfo=UTC)

BENCHMARK = '''def rolling_checksum(data, window):
    """A windowed weighted checksum."""
    total = 0
    out = []
    for index, value in enumerate(data):
        total += value * (index + 1)
        if index >= window:
            total -= data[index - window] * (index - window + 1)
        out.append(total % 65521)
    return out
'''
RENAMED = '''def rolling_checksum(xs, w):
    # same program, every local renamed
    acc = 0
    res = []
    for i, v in enumerate(xs):
        acc += v * (i + 1)
        if i >= w:
            acc -= xs[i - w] * (i - w + 1)
        res.append(acc % 65521)
    return res
'''
SHARED_13_GRAMS = '''def rolling_checksum(data, window):
    total = 0
    out = []
    for index, value in enumerate(data):
        total += value * (index + 1)
        if index >= window:
            total -= data[index - window] * (index - window + 1)
        out.append(total % 65519)
    return [x + 1 for x in out]
'''
UNRELATED = [
    "from typing import List\n\n\ndef mean(numbers: List[float]) -> float:\n    return sum(numbers) / len(numbers)\n",
    "from typing import List\n\n\ndef evens(numbers: List[int]) -> List[int]:\n"
    "    return [n for n in numbers if n % 2 == 0]\n",
    "def count_vowels(text):\n    total = 0\n    for ch in text:\n        if ch in 'aeiou':\n"
    "            total += 1\n    return total\n",
]


def train_id(tag: str) -> str:
    """A problem id that the default split rule keeps for training."""
    for salt in range(100):
        candidate = f"{tag}-{salt}"
        if split_of(candidate) == "train":
            return candidate
    raise AssertionError("no train id")


def held_out_id(tag: str) -> str:
    for salt in range(100):
        candidate = f"{tag}-{salt}"
        if split_of(candidate) == "held_out":
            return candidate
    raise AssertionError("no held-out id")


def plant(warehouse: Warehouse, problem_id: str, original: str, variant: str, *, difficulty: int = 7,
          round_: int = 0, detail: str | None = "arithmetic", split: str = "train", source: str = "planted",
          duplicate_of: str | None = None, flags: list[str] | None = None, reproduced: bool | None = None,
          answer: bool = True) -> str:
    """One verified pair (with its problem, programs, input, sample, verdict, difficulty label and an evaluator
    answer that diverged); returns the pair id."""
    o, v, i = program_row(original, NOW), program_row(variant, NOW), input_row("{'data': [1, 2], 'window': 1}", NOW)
    tag = content_id(problem_id, original, variant)[:16]
    sample_id, verdict_id, pair_id = f"s-{tag}", f"vd-{tag}", f"pair-{tag}"
    batch = {
        "problems": [{"problem_id": problem_id, "source": source, "source_id": problem_id, "split": split,
                      "code": original, "entry_point": "f", "created_at": NOW}],
        "programs": [o, v], "inputs": [i],
        "samples": [{"sample_id": sample_id, "problem_id": problem_id, "round": round_, "target_difficulty": 5,
                     "program_id": v["program_id"], "input_id": i["input_id"], "status": "valid", "detail": detail,
                     "run_id": "run-1", "created_at": NOW}],
        "verdicts": [{"verdict_id": verdict_id, "original_program_id": o["program_id"],
                      "variant_program_id": v["program_id"], "entry_point": "f", "input_id": i["input_id"],
                      "verdict": "diverges", "reason": "diverges", "run_id": "run-1", "created_at": NOW}],
        "pairs": [{"pair_id": pair_id, "problem_id": problem_id, "sample_id": sample_id, "verdict_id": verdict_id,
                   "original_program_id": o["program_id"], "variant_program_id": v["program_id"],
                   "input_id": i["input_id"], "entry_point": "f", "generator_agent_id": "g", "round": round_,
                   "run_id": "run-1", "created_at": NOW, "duplicate_of": duplicate_of,
                   "duplicate_kind": "exact" if duplicate_of else None, "flags": json.dumps(flags or [])}],
        "difficulty_labels": [{"pair_id": pair_id, "evaluator_agent_id": "e", "round": round_, "n_answers": 10,
                               "n_failures": difficulty, "difficulty": difficulty, "run_id": "run-1",
                               "created_at": NOW}],
    }
    if answer:
        batch["evaluator_answers"] = [{"answer_id": f"a-{tag}", "pair_id": pair_id, "agent_id": "e", "answer_index": 0,
                                       "input_id": i["input_id"], "claimed_equivalent": False, "counted": True,
                                       "diverged": True, "round": round_, "run_id": "run-1", "created_at": NOW}]
    if reproduced is not None:
        batch["audits"] = [{"audit_id": f"au-{tag}", "audit_run": "audit-1", "subject": "pair", "pair_id": pair_id,
                            "reproduced": reproduced, "reason": None if reproduced else "outcome_changed",
                            "created_at": NOW}]
    warehouse.store(batch)
    return pair_id


def mutant(code: str) -> str:
    return code.replace("return", "return 1 +", 1) if "return" in code else code + "\nx = 1\n"


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "w.duckdb")


def benchmark_file(tmp_path: Path) -> Path:
    path = tmp_path / "mini_bench.jsonl"
    path.write_text(json.dumps({"task_id": "B/0", "prompt": BENCHMARK.split('    """')[0],
                                "canonical_solution": '    """' + BENCHMARK.split('    """', 1)[1],
                                "entry_point": "rolling_checksum"}) + "\n")
    return path


def test_planted_benchmark_overlap_is_removed_and_unrelated_rows_stay(warehouse, tmp_path):
    decontamination = DecontaminationConfig(benchmark_files=[benchmark_file(tmp_path)])
    exact = plant(warehouse, train_id("exact"), BENCHMARK, mutant(BENCHMARK))
    renamed = plant(warehouse, train_id("renamed"), UNRELATED[2], RENAMED)
    grams = plant(warehouse, train_id("grams"), UNRELATED[2].replace("'aeiou'", "'xyz'"), SHARED_13_GRAMS)
    kept = [plant(warehouse, train_id(f"kept{n}"), code, mutant(code), difficulty=n) for n, code in
            enumerate(UNRELATED)]
    examples, hygiene = select(warehouse, "sft", "generator", BuildConfig(easy_share=1.0), decontamination)
    assert hygiene.removed == {"contaminated_ast": sorted([exact, renamed]), "contaminated_ngram": [grams]}
    assert {e["pair_id"] for e in examples} == set(kept)
    assert hygiene.eval_items == {"mini_bench": 1}
    [item] = load_items(warehouse)
    assert item.suite == "mini_bench" and item.origin == "mini_bench.jsonl:B/0"

    index = EvalIndex([item])
    assert index.contaminating(SHARED_13_GRAMS, decontamination).how == "ngram"
    assert index.contaminating(SHARED_13_GRAMS, decontamination.model_copy(update={"max_ngram_overlap": 1.0})) is None
    assert index.contaminating(RENAMED, decontamination.model_copy(update={"ast_match": False})).how == "ngram"

    evaluator, hygiene = select(warehouse, "sft", "evaluator", BuildConfig(), decontamination)
    assert {e["pair_id"] for e in evaluator} == set(kept) and len(hygiene.removed["contaminated_ast"]) == 2
    asked, hygiene = select(warehouse, "sft", "generator", BuildConfig(easy_share=1.0),
                            decontamination.model_copy(update={"enabled": False}))
    assert {e["pair_id"] for e in asked} == {exact, renamed, grams, *kept} and hygiene.removed == {}


def test_humaneval_boilerplate_keeps_legitimate_rows_and_copies_go():
    """The threshold measured on HumanEval under the default split: only HumanEval/61 (the near-twin of held-out
    HumanEval/56: the same program over other brackets) overlaps a held-out program; every copy is caught."""
    from sinq.sources.loaders import load

    problems = load("humaneval")
    held = [p for p in problems if p.split == "held_out"]
    train = [p for p in problems if p.split == "train"]
    index = EvalIndex([make_item("held_out", p.code, p.source_id, p.problem_id) for p in held])
    config = DecontaminationConfig()
    removed = {p.source_id for p in train if index.contaminating(p.code, config)}
    assert removed == {"HumanEval/61"}
    assert any("from typing import List" in p.code for p in train if p.source_id not in removed)
    embedded = "def helper(a, b):\n    return a * b + 1\n\n{}\n\ndef more(z):\n    return [k * k for k in range(z)]\n"
    for problem in held:
        assert index.contaminating(problem.code, config).how == "ast"
        assert index.contaminating(embedded.format(problem.code), config) is not None, problem.source_id


def test_duplicates_and_flagged_variants_stay_out_unless_asked(warehouse, tmp_path):
    first = plant(warehouse, train_id("dup"), UNRELATED[0], mutant(UNRELATED[0]))
    dup = plant(warehouse, train_id("dup"), UNRELATED[0], mutant(UNRELATED[0]) + "\n", duplicate_of=first)
    flagged = plant(warehouse, train_id("flag"), UNRELATED[1], mutant(UNRELATED[1]), flags=["environment"])
    unreproduced = plant(warehouse, train_id("audit"), UNRELATED[2], mutant(UNRELATED[2]), reproduced=False)
    audited = plant(warehouse, train_id("audit-ok"), BENCHMARK, mutant(BENCHMARK), reproduced=True)
    held = plant(warehouse, held_out_id("held"), UNRELATED[2], UNRELATED[2].replace("1", "2"))
    tripled = "def triple(x):\n    return x * 3\n"
    stored_test = plant(warehouse, train_id("test"), tripled, tripled.replace("3", "4"), split="test")

    config = BuildConfig(easy_share=1.0, root=tmp_path / "sets")
    examples, hygiene = select(warehouse, "sft", "generator", config)
    assert {e["pair_id"] for e in examples} == {first, audited}
    assert hygiene.removed == {"held_out": sorted([held, stored_test]), "not_reproduced": [unreproduced],
                               "duplicate": [dup], "flagged": [flagged]}
    asked = config.model_copy(update={"include_duplicates": True, "include_flagged": True})
    examples, hygiene = select(warehouse, "sft", "generator", asked)
    assert {e["pair_id"] for e in examples} == {first, dup, flagged, audited}
    assert set(hygiene.removed) == {"held_out", "not_reproduced"}

    built = snapshot(warehouse, "sft", "generator", asked)
    assert built["removed"] == {"held_out": 2, "not_reproduced": 1}
    card = (Path(built["path"]) / "README.md").read_text()
    stats = json.loads(card.rsplit("`statistics`: `", 1)[1].rstrip().rstrip("`"))
    assert stats["duplicates_included"] == 1 and stats["flags_included"] == {"environment": 1}


def test_held_out_problems_become_items_and_never_train(warehouse, tmp_path):
    """A warehouse written before the split rule stored every problem as train: the rule still holds them out."""
    held = held_out_id("old")
    plant(warehouse, held, UNRELATED[0], mutant(UNRELATED[0]))
    kept = plant(warehouse, train_id("new"), UNRELATED[1], mutant(UNRELATED[1]))
    nothing_held = SplitConfig(held_out_share=0.0)
    examples, hygiene = select(warehouse, "sft", "generator", BuildConfig(easy_share=1.0), split=nothing_held)
    assert len(examples) == 2 and hygiene.removed == {} and load_items(warehouse) == []
    examples, hygiene = select(warehouse, "sft", "generator", BuildConfig(easy_share=1.0))
    assert [e["pair_id"] for e in examples] == [kept] and len(hygiene.removed["held_out"]) == 1
    [item] = load_items(warehouse)
    assert (item.suite, item.problem_id, item.text) == ("held_out", held, UNRELATED[0])
    with pytest.raises(HeldOutLeak):
        write_snapshot(warehouse, "sft", "generator", [*examples, {**examples[0], "problem_id": held}],
                       BuildConfig(root=tmp_path))


def test_card_counts_rounds_sources_difficulty_edits_and_removals(warehouse, tmp_path):
    decontamination = DecontaminationConfig(benchmark_files=[benchmark_file(tmp_path)])
    plant(warehouse, train_id("c0"), UNRELATED[0], mutant(UNRELATED[0]), difficulty=7, round_=0, source="humaneval")
    plant(warehouse, train_id("c1"), UNRELATED[1], mutant(UNRELATED[1]), difficulty=7, round_=1, source="mbpp:x",
          detail="comparison")
    plant(warehouse, train_id("c2"), UNRELATED[2], mutant(UNRELATED[2]) + "y = 2\nz = 3\n", difficulty=3,
          round_=1, source="mbpp:x", detail=None)
    copy = plant(warehouse, train_id("c3"), BENCHMARK, mutant(BENCHMARK))
    first = plant(warehouse, train_id("c4"), UNRELATED[0], UNRELATED[0].replace("sum", "max"))
    plant(warehouse, train_id("c5"), UNRELATED[0], UNRELATED[0].replace("sum", "max") + "\n", duplicate_of=first)
    config = BuildConfig(easy_share=1.0, root=tmp_path / "sets", difficulty_examples=True)
    built = snapshot(warehouse, "sft", "generator", config, decontamination)
    assert built["removed"] == {"duplicate": 1, "contaminated_ast": 1}
    card = (Path(built["path"]) / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["configs"][0]["data_files"] == "train.parquet" and front["pretty_name"].startswith("sinq sft")
    stats = json.loads(card.rsplit("`statistics`: `", 1)[1].rstrip().rstrip("`"))
    assert stats["examples_by_round"] == {"0": 4, "1": 4}
    assert stats["examples_by_source"] == {"planted": 2, "mbpp:x": 4, "humaneval": 2}
    assert stats["pairs_by_difficulty"] == {"3": 1, "7": 3}
    assert stats["pairs_by_mutation"] == {"arithmetic": 2, "comparison": 1}
    assert stats["pairs_by_edit_lines"] == {"1": 3, "3-5": 1}
    assert stats["removed"] == {"duplicate": 1, "contaminated_ast": 1}
    assert "| contaminated_ast | 1 |" in card and "| duplicate | 1 |" in card and "| mbpp:x | 4 |" in card
    assert "checked against 1 evaluation items (mini_bench: 1)" in card
    with warehouse.reading() as con:
        problem_ids, removed, counts = con.execute("SELECT problem_ids, removed, counts FROM training_sets").fetchone()
    assert len(json.loads(problem_ids)) == 4 and json.loads(removed)["contaminated_ast"] == [copy]
    assert json.loads(counts)["statistics"] == stats


def test_contaminated_items_names_what_a_snapshot_touched(warehouse, tmp_path):
    path = benchmark_file(tmp_path)
    copy = plant(warehouse, train_id("t0"), BENCHMARK, mutant(BENCHMARK))
    clean = train_id("t1")
    plant(warehouse, clean, UNRELATED[0], mutant(UNRELATED[0]))
    config = BuildConfig(easy_share=1.0, root=tmp_path / "sets")
    asked = DecontaminationConfig(enabled=False)
    built = snapshot(warehouse, "sft", "generator", config, asked)
    assert register_benchmark(warehouse, path) == 1 and register_benchmark(warehouse, path) == 0
    [bench] = load_items(warehouse)
    game = make_item("game", UNRELATED[1], "planted", clean)
    untouched = make_item("game", UNRELATED[2], "planted", train_id("never"))
    register_items(warehouse, [game, untouched])

    report = contaminated_items(warehouse, item_ids=[bench.item_id, game.item_id, untouched.item_id])
    assert [(r["item_id"], r["snapshot_id"], r["how"]) for r in report] == [
        (bench.item_id, built["snapshot_id"], "ast"), (game.item_id, built["snapshot_id"], "problem")]
    by_problem = contaminated_items(warehouse, problem_ids=[clean, "unknown"])
    assert [(r["item_id"], r["how"]) for r in by_problem] == [(game.item_id, "problem")]

    decontaminated = snapshot(warehouse, "sft", "generator", config)
    assert decontaminated["removed"] == {"contaminated_ast": 1}
    assert contaminated_items(warehouse, item_ids=[bench.item_id], snapshot_ids=[decontaminated["snapshot_id"]]) == []
    assert copy not in {e["pair_id"] for e in select(warehouse, "sft", "generator", config)[0]}

    hand_made = write_snapshot(warehouse, "sft", "generator", [{
        "prompt": [{"role": "user", "content": "x"}], "completion": [{"role": "assistant", "content": "y"}],
        "pair_id": "not-stored", "problem_id": clean, "split": "train", "round": 0, "run_id": None}], config)
    assert any(r["snapshot_id"] == hand_made["snapshot_id"] and r["how"] == "problem"
               for r in contaminated_items(warehouse, item_ids=[game.item_id]))


def test_benchmark_formats(tmp_path):
    csv_items = benchmark_items(Path(__file__).resolve().parent / "data" / "identifier_swap_sample.csv",
                                "identifier_swap")
    assert len(csv_items) == 40 and sum(bool(i.ast_hash) for i in csv_items) == 34  # 6 rows' code does not parse
    assert "def " in csv_items[0].text and csv_items[0].text.count("\n") > 5  # prompt + the right completion
    (tmp_path / "solution.py").write_text(BENCHMARK)
    [py] = benchmark_items(tmp_path / "solution.py")
    [jsonl] = benchmark_items(benchmark_file(tmp_path))
    assert py.suite == "solution" and py.ast_hash == jsonl.ast_hash
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text(json.dumps({"task_id": 7, "code": RENAMED, "test_list": []}) + "\n")
    [row] = benchmark_items(mbpp)
    assert row.ast_hash == py.ast_hash and row.origin == "mbpp.jsonl:7"
