"""Training sets with both kinds of pair (issue 15): evaluator SFT/DPO teach "Yes" on equivalent pairs next to "No"
with a diverging input, at most ``equivalent_share`` of a set; a refuted pair never teaches "Yes"; held-out and
contaminated equivalent pairs never train; GRPO's sandbox reward scores each kind by the game's rule. The warehouse
is a real DuckDB file filled with rows made from real sandbox verdicts."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinq.game.parsing import normalize_input
from sinq.game.prompts import bob_messages
from sinq.sandbox.verify import Pair, verify_many
from sinq.sources.config import SplitConfig
from sinq.sources.problem import Problem
from sinq.sources.splits import split_of
from sinq.training.config import BuildConfig, DecontaminationConfig
from sinq.training.datasets import HeldOutLeak, build, evaluator_sft, select, snapshot, write_snapshot
from sinq.training.rewards import SandboxReward
from sinq.warehouse import queries
from sinq.warehouse.records import (
    content_id,
    equivalent_pair_rows,
    input_row,
    merge,
    pair_rows,
    problem_row,
    program_row,
    relabel_rows,
    verdict_rows,
)
from sinq.warehouse.store import Warehouse
from tests.conftest import fast_config

NO_DECONTAM = DecontaminationConfig(enabled=False)


def _original(i: int) -> str:
    return f"def f(x):\n    return x * {i + 2} + {i}\n"


def _equivalent(i: int) -> str:
    return f"def f(x):\n    scaled = {i + 2} * x\n    return scaled + {i}\n"


def _inequivalent(i: int) -> str:
    """Equal to the original at x <= 0, one more above."""
    return f"def f(x):\n    return x * {i + 2} + {i} + (x > 0)\n"


WEAK = "def f(x):\n    return abs(x) * 2 + 0\n"
"""Equal to ``_original(0)`` on the non-negative inputs it is fuzzed on; an answer's x = -4 refutes it."""
HELD_ORIGINAL = "def g(s):\n    return s.upper()[::-1] + '!'\n"
HELD_EQUIVALENT = "def g(s):\n    shout = s.upper()\n    return shout[::-1] + '!'\n"
YES = "# Equivalent?\nYes"


def _problem(code: str, entry: str, split: str, name: str) -> Problem:
    """A problem whose id the default split rule keeps for training (a stored ``test`` split holds it out)."""
    for n in range(100):
        problem = Problem("unit", f"{name}-{n}", code, "", entry, split=split)
        if split_of(problem.problem_id, SplitConfig(), "unit") == "train":
            return problem
    raise AssertionError("no training id found")


def _answer(pair_id: str, index: int, claim: bool | None, literal: str | None, diverged: bool,
            now: datetime) -> dict:
    return {"answer_id": content_id("answer", pair_id, index), "pair_id": pair_id, "agent_id": "evaluator:test",
            "answer_index": index, "claimed_equivalent": claim,
            "input_id": input_row(normalize_input(literal), now)["input_id"] if literal else None,
            "counted": True, "diverged": diverged, "round": 0, "run_id": "run-1", "created_at": now}


@pytest.fixture(scope="module")
def stocked(local_backend, tmp_path_factory) -> dict:
    """Four train problems, each with an inequivalent pair (difficulty labelled) and an equivalent pair (fuzzed equal
    on x = 0, 1, 2); a weak equivalent pair on problem 0 that an answer refutes; a held-out problem with an
    equivalent pair. Answers: on each inequivalent pair a diverging "No", a non-diverging "No" and a "Yes" (a miss);
    on equivalent pairs 0-2 a "Yes" and a false alarm (x = 2), on pair 3 a "Yes" and a non-answer; on the weak pair
    a "Yes" and the refuting "No"; on the held-out pair a "Yes" and a false alarm."""
    config = fast_config()
    now = datetime.now(UTC)
    tmp = tmp_path_factory.mktemp("training-equivalent")
    problems = [_problem(_original(i), "f", "train", f"p{i}") for i in range(4)]
    held = _problem(HELD_ORIGINAL, "g", "test", "held")
    checks = ([Pair(f"i{i}", _original(i), _inequivalent(i), "f", "{'x': 1}") for i in range(4)]
              + [Pair(f"i{i}-0", _original(i), _inequivalent(i), "f", "{'x': 0}") for i in range(4)])
    fuzzed = {i: [Pair(f"e{i}-{x}", _original(i), _equivalent(i), "f", f"{{'x': {x}}}") for x in range(3)]
              for i in range(4)}
    weak = [Pair(f"w{x}", _original(0), WEAK, "f", f"{{'x': {x}}}") for x in range(3)]
    refuting = Pair("refute", _original(0), WEAK, "f", "{'x': -4}")
    held_fuzz = [Pair(f"h{n}", HELD_ORIGINAL, HELD_EQUIVALENT, "g", literal)
                 for n, literal in enumerate(["{'s': 'ab'}", "{'s': ''}"])]
    everything = checks + [p for i in range(4) for p in fuzzed[i]] + weak + [refuting] + held_fuzz
    verdicts = dict(zip((p.id for p in everything), verify_many(everything, local_backend, config),
                        strict=True))
    assert [verdicts[f"i{i}"].verdict for i in range(4)] == ["diverges"] * 4
    assert {verdicts[p.id].verdict for p in everything if p.id[0] in "ewh" or "-0" in p.id} == {
        "same"}
    assert verdicts["refute"].verdict == "diverges"

    batch = {"problems": [problem_row(p, "run-1", now) for p in [*problems, held]], "evaluator_answers": [],
             "samples": [], "difficulty_labels": []}
    ids: dict[str, str] = {}
    for i, problem in enumerate(problems):
        pair = checks[i]
        rows = verdict_rows(pair, verdicts[pair.id], "run-1", config.compare, now, config)
        sample_id = content_id("sample", problem.problem_id, i)
        [row] = pair_rows(rows, "generator:test", 0, problem.problem_id, sample_id)
        ids[f"I{i}"] = row["pair_id"]
        batch["samples"].append({
            "sample_id": sample_id, "problem_id": problem.problem_id, "agent_id": "generator:test", "round": 0,
            "target_difficulty": 5, "program_id": program_row(pair.variant, now)["program_id"],
            "input_id": rows["verdicts"][0]["input_id"], "status": "valid", "detail": "arith", "run_id": "run-1",
            "created_at": now})
        batch["difficulty_labels"].append({
            "pair_id": row["pair_id"], "evaluator_agent_id": "evaluator:test", "round": 0, "n_answers": 3,
            "n_failures": 2, "difficulty": 6, "run_id": "run-1", "created_at": now})
        zero = checks[4 + i]
        batch = merge(batch, rows, verdict_rows(zero, verdicts[zero.id], "run-1", config.compare, now, config),
                      {"pairs": [row]})
        batch["evaluator_answers"] += [_answer(row["pair_id"], 0, False, "{'x': 1}", True, now),
                                       _answer(row["pair_id"], 1, False, "{'x': 0}", False, now),
                                       _answer(row["pair_id"], 2, True, None, False, now)]
        made = equivalent_pair_rows([(p, verdicts[p.id]) for p in fuzzed[i]], "construction",
                                    ["rename_locals", "extract_temporary"], "maker:test", 0, problem.problem_id,
                                    None, "run-1", now, config)
        ids[f"E{i}"] = pair_id = made["pairs"][0]["pair_id"]
        batch = merge(batch, made)
        batch["evaluator_answers"] += [_answer(pair_id, 0, True, None, False, now),
                                       _answer(pair_id, 1, False, "{'x': 2}", False, now) if i < 3 else
                                       _answer(pair_id, 1, None, None, False, now)]
    made = equivalent_pair_rows([(p, verdicts[p.id]) for p in weak], "construction", ["algebra"], "maker:test",
                                0, problems[0].problem_id, None, "run-1", now, config)
    ids["R"] = made["pairs"][0]["pair_id"]
    refute = _answer(ids["R"], 1, False, "{'x': -4}", True, now)
    batch = merge(batch, made, relabel_rows(
        ids["R"], verdict_rows(refuting, verdicts["refute"], "run-1", config.compare, now, config),
        refute["answer_id"], "maker:test", 0, problems[0].problem_id, None, "run-1", now))
    batch["evaluator_answers"] += [_answer(ids["R"], 0, True, None, False, now), refute]
    made = equivalent_pair_rows([(p, verdicts[p.id]) for p in held_fuzz], "construction", ["extract_temporary"],
                                "maker:test", 0, held.problem_id, None, "run-1", now, config)
    ids["H"] = made["pairs"][0]["pair_id"]
    batch = merge(batch, made)
    batch["evaluator_answers"] += [_answer(ids["H"], 0, True, None, False, now),
                                   _answer(ids["H"], 1, False, "{'s': ''}", False, now)]
    warehouse = Warehouse(tmp / "w.duckdb")
    warehouse.store(batch)
    with warehouse.reading() as con:
        status = dict(con.execute("SELECT pair_id, status FROM all_pairs").fetchall())
    assert status[ids["R"]] == "refuted" and status[ids["E0"]] == status[ids["H"]] == "equivalent"
    return {"warehouse": warehouse, "ids": ids, "tmp": tmp}


def _said(example: dict, key: str = "completion") -> str:
    return example[key][0]["content"]


def test_evaluator_sft_teaches_yes_on_equivalent_pairs_up_to_the_share(stocked) -> None:
    warehouse, ids = stocked["warehouse"], stocked["ids"]
    equivalent = {ids[f"E{i}"] for i in range(4)}
    examples = build(warehouse, "sft", "evaluator", BuildConfig(equivalent_share=0.5), NO_DECONTAM)
    yes = [e for e in examples if YES in _said(e)]
    no = [e for e in examples if YES not in _said(e)]
    # 5 "No": a diverging input on each inequivalent pair and the refuting one; up to 5 "Yes" allowed at 0.5: all 4
    assert len(no) == 5 and {e["pair_id"] for e in yes} == equivalent and len(yes) == 4
    assert {e["pair_kind"] for e in yes} == {"equivalent"} and {e["pair_kind"] for e in no} == {"inequivalent"}
    assert all("# Diverging input example" not in _said(e) for e in yes)
    assert all("# Equivalent?\nNo" in _said(e) and "# Diverging input example" in _said(e) for e in no)
    assert {json.loads(e["transformations"])[0] for e in yes} == {"rename_locals"}
    [refuted] = [e for e in examples if e["pair_id"] == ids["R"]]
    assert "{'x': -4}" in _said(refuted), "the refuted pair trains as inequivalent, with the input that refuted it"
    for share, wanted in ((0.3, 2), (0.0, 0), (1.0, 4)):  # 0.3: k / (5 + k) <= 0.3 gives k = 2
        examples = build(warehouse, "sft", "evaluator", BuildConfig(equivalent_share=share), NO_DECONTAM)
        yes = [e for e in examples if YES in _said(e)]
        assert len(yes) == wanted and len(examples) == 5 + wanted, share
        assert len(yes) / len(examples) <= share
    only_yes = [a for a in queries.training_answers(warehouse, None)
                if a["pair_id"] in equivalent and a["claimed_equivalent"]]
    assert evaluator_sft(only_yes, BuildConfig(equivalent_share=0.9)) == [], "no 'No' at all: a cap admits none"


def test_evaluator_dpo_prefers_yes_over_a_real_false_alarm(stocked) -> None:
    warehouse, ids = stocked["warehouse"], stocked["ids"]
    examples = build(warehouse, "dpo", "evaluator", BuildConfig(equivalent_share=1.0), NO_DECONTAM)
    by_pair = {e["pair_id"]: e for e in examples}
    assert len(by_pair) == len(examples) == 8
    for i in range(3):
        example = by_pair[ids[f"E{i}"]]
        assert example["pair_kind"] == "equivalent" and YES in _said(example, "chosen")
        assert "# Equivalent?\nNo" in _said(example, "rejected") and "{'x': 2}" in _said(example, "rejected")
    assert ids["E3"] not in by_pair, "no false alarm was given on pair 3: no made-up 'No'"
    for i in range(4):
        example = by_pair[ids[f"I{i}"]]
        assert "{'x': 1}" in _said(example, "chosen") and "{'x': 0}" in _said(example, "rejected")
    refuted = by_pair[ids["R"]]
    assert refuted["pair_kind"] == "inequivalent" and "{'x': -4}" in _said(refuted, "chosen")
    assert YES in _said(refuted, "rejected"), "on a refuted pair the 'Yes' is the rejected answer"
    capped = build(warehouse, "dpo", "evaluator", BuildConfig(equivalent_share=0.3), NO_DECONTAM)
    assert sum(e["pair_kind"] == "equivalent" for e in capped) == 2 and len(capped) == 7


def test_a_refuted_pair_is_never_a_yes_example(stocked) -> None:
    warehouse, ids = stocked["warehouse"], stocked["ids"]
    sets = [build(warehouse, kind, "evaluator", BuildConfig(equivalent_share=1.0), NO_DECONTAM)
            for kind in ("sft", "dpo", "grpo")]
    refuted = [e for examples in sets for e in examples if e["pair_id"] == ids["R"]]
    assert len(refuted) == 3 and {e["pair_kind"] for e in refuted} == {"inequivalent"}
    assert YES not in _said(refuted[0]) and YES not in _said(refuted[1], "chosen")


def test_held_out_and_contaminated_equivalent_pairs_never_train(stocked, tmp_path: Path) -> None:
    warehouse, ids = stocked["warehouse"], stocked["ids"]
    config = BuildConfig(root=tmp_path, equivalent_share=1.0)
    for kind in ("sft", "dpo", "grpo"):
        examples, hygiene = select(warehouse, kind, "evaluator", config)
        assert ids["H"] in hygiene.removed["held_out"] and ids["H"] not in {e["pair_id"] for e in examples}
    leaking = [a for a in queries.training_answers(warehouse, None) if a["pair_id"] == ids["H"]]
    with pytest.raises(HeldOutLeak):
        write_snapshot(warehouse, "sft", "evaluator", evaluator_sft(leaking, config), config)

    bench = tmp_path / "bench.py"
    bench.write_text(_equivalent(1))
    shutil.copy(warehouse.path, tmp_path / "copy.duckdb")  # registered items stay: the other tests keep none
    examples, hygiene = select(Warehouse(tmp_path / "copy.duckdb"), "sft", "evaluator", config,
                               DecontaminationConfig(benchmark_files=[bench]))
    assert ids["E1"] in hygiene.removed["contaminated_ast"]
    kept = {e["pair_id"] for e in examples}
    assert ids["E1"] not in kept and ids["E0"] in kept


def test_the_card_counts_examples_per_kind(stocked, tmp_path: Path) -> None:
    warehouse = stocked["warehouse"]
    built = snapshot(warehouse, "sft", "evaluator", BuildConfig(root=tmp_path, equivalent_share=0.5))
    card = (Path(built["path"]) / "README.md").read_text()
    assert "| equivalent | 4 |" in card and "| inequivalent | 5 |" in card and "Examples per pair kind" in card
    assert "| rename_locals | 4 |" in card and "at most 50% of this set" in card
    with warehouse.reading() as con:
        counts = json.loads(con.execute("SELECT counts FROM training_sets WHERE snapshot_id = ?",
                                        [built["snapshot_id"]]).fetchone()[0])
    assert counts["statistics"]["examples_by_kind"] == {"equivalent": 4, "inequivalent": 5}
    assert counts["statistics"]["removed"] == {"held_out": 1}


def test_grpo_prompts_carry_the_kind_outside_the_prompt(stocked) -> None:
    warehouse, ids = stocked["warehouse"], stocked["ids"]
    examples = build(warehouse, "grpo", "evaluator", BuildConfig(equivalent_share=0.5), NO_DECONTAM)
    kinds = {e["pair_id"]: e["pair_kind"] for e in examples}
    assert kinds == {**{ids[f"I{i}"]: "inequivalent" for i in range(4)}, ids["R"]: "inequivalent",
                     **{ids[f"E{i}"]: "equivalent" for i in range(4)}}
    for example in examples:
        assert example["prompt"] == bob_messages(example["original"], example["variant"], example["entry_point"])
    assert len(build(warehouse, "grpo", "evaluator", BuildConfig(equivalent_share=0.0), NO_DECONTAM)) == 4
    generator = build(warehouse, "grpo", "generator", BuildConfig(), NO_DECONTAM)
    assert {e["pair_kind"] for e in generator} == {"inequivalent"} and len(generator) == 4


def _bob(equivalent: bool, literal: str | None = None) -> list[dict]:
    text = f"# Analysis\nLooked.\n\n# Equivalent?\n{'Yes' if equivalent else 'No'}\n"
    if literal is not None:
        text += f"\n# Diverging input example\n```python\n{literal}\n```\n"
    return [{"role": "assistant", "content": text}]


def test_the_grpo_reward_scores_both_kinds_in_the_sandbox(local_backend, stocked) -> None:
    reward = SandboxReward(local_backend, "evaluator")
    cases = [  # (original, variant, kind, completion, reward)
        (_original(0), _equivalent(0), "equivalent", _bob(True), 1.0),
        (_original(0), _equivalent(0), "equivalent", _bob(False, "{'x': 2}"), 0.0),  # a false alarm
        (_original(0), _equivalent(0), "equivalent", _bob(False), 0.0),
        (_original(0), WEAK, "equivalent", _bob(False, "{'x': -4}"), 1.0),  # refutes the label
        (_original(0), _inequivalent(0), "inequivalent", _bob(True), 0.0),  # a miss
        (_original(0), _inequivalent(0), "inequivalent", _bob(False, "{'x': 1}"), 1.0),
        (_original(0), _inequivalent(0), "inequivalent", _bob(False, "{'x': 0}"), 0.0),
    ]
    columns = {"original": [c[0] for c in cases], "variant": [c[1] for c in cases],
               "entry_point": ["f"] * len(cases), "pair_kind": [c[2] for c in cases]}
    assert reward([None] * len(cases), [c[3] for c in cases], **columns) == [c[4] for c in cases]
    del columns["pair_kind"]  # a set built before pair kinds: every pair inequivalent, as before
    assert reward([None] * len(cases), [c[3] for c in cases], **columns) == [0, 0, 0, 1, 0, 1, 0]

    examples = build(stocked["warehouse"], "grpo", "evaluator", BuildConfig(equivalent_share=1.0), NO_DECONTAM)
    rows = {k: [e[k] for e in examples] for k in examples[0] if k != "prompt"}
    answers = [_bob(True) if e["pair_kind"] == "equivalent" else _bob(False, "{'x': 1}") for e in examples]
    scores = reward([e["prompt"] for e in examples], answers, **rows)
    by_pair = dict(zip(rows["pair_id"], scores, strict=True))
    ids = stocked["ids"]
    assert by_pair[ids["R"]] == 0.0, "x = 1 does not show the weak pair's divergence"
    assert all(by_pair[ids[f"E{i}"]] == 1.0 and by_pair[ids[f"I{i}"]] == 1.0 for i in range(4))


def test_the_cli_takes_the_equivalent_share(stocked, tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "sinq.toml"
    config.write_text(f"[training.build]\nroot = \"{tmp_path / 'sets'}\"\n"
                      "[training.decontamination]\nenabled = false\n")
    shown = {}
    for share in ("0", "1"):
        done = subprocess.run([sys.executable, "-m", "sinq", "train", "build", "sft", "--role", "evaluator",
                               "--equivalent-share", share, "--db", str(stocked["warehouse"].path), "--config",
                               str(config), "--json"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        shown[share] = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["1"]["examples"] == shown["0"]["examples"] + 4, shown
