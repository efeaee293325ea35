"""Training sets from the warehouse, in TRL's conversational formats (prompt/completion for SFT, prompt/chosen/
rejected for DPO, prompt + reward columns for GRPO), seeded, saved as Parquet with a dataset card and registered in
``training_sets`` with the config, runs, rounds and counts that made them. Problems of held-out splits never enter
a set: they are filtered in SQL and checked again before anything is written."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from game.prompts import alice_messages, bob_messages, render_alice, render_bob
from training.config import BuildConfig
from warehouse.records import content_id
from warehouse.store import Warehouse

KINDS = {("sft", "generator"), ("dpo", "generator"), ("sft", "evaluator"), ("dpo", "evaluator"),
         ("grpo", "generator"), ("grpo", "evaluator")}


class HeldOutLeak(RuntimeError):
    """A held-out problem reached a training set: refused, nothing written."""


def _where_rounds(config: BuildConfig, column: str) -> tuple[str, list]:
    if config.rounds is None:
        return "", []
    return f" AND {column} IN (SELECT unnest(?))", [config.rounds]


def _pairs(warehouse: Warehouse, config: BuildConfig) -> list[dict]:
    rounds, params = _where_rounds(config, "p.round")
    sql = (
        "SELECT p.pair_id, p.problem_id, coalesce(pr.split, 'train') AS split, o.code AS original, p.entry_point, "
        "s.target_difficulty, v.code AS variant, i.literal, d.difficulty, p.round, p.run_id, r.text AS response, "
        "s.detail FROM pairs p JOIN samples s ON s.sample_id = p.sample_id "
        "JOIN problems pr ON pr.problem_id = p.problem_id JOIN programs o ON o.program_id = p.original_program_id "
        "JOIN programs v ON v.program_id = p.variant_program_id JOIN inputs i ON i.input_id = p.input_id "
        "JOIN latest_difficulty d ON d.pair_id = p.pair_id LEFT JOIN llm_responses r ON r.response_id = s.response_id "
        "WHERE coalesce(pr.split, 'train') NOT IN (SELECT unnest(?))" + rounds + " ORDER BY p.pair_id")
    return _rows(warehouse, sql, [config.held_out_splits, *params])


def _rows(warehouse: Warehouse, sql: str, params: list) -> list[dict]:
    with warehouse.reading() as con:
        cursor = con.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _answers(warehouse: Warehouse, config: BuildConfig) -> list[dict]:
    rounds, params = _where_rounds(config, "a.round")
    sql = (
        "SELECT a.pair_id, p.problem_id, coalesce(pr.split, 'train') AS split, o.code AS original, "
        "v.code AS variant, p.entry_point, i.literal, a.diverged, a.round, a.run_id FROM evaluator_answers a "
        "JOIN pairs p ON p.pair_id = a.pair_id JOIN problems pr ON pr.problem_id = p.problem_id "
        "JOIN programs o ON o.program_id = p.original_program_id "
        "JOIN programs v ON v.program_id = p.variant_program_id JOIN inputs i ON i.input_id = a.input_id "
        "WHERE coalesce(pr.split, 'train') NOT IN (SELECT unnest(?))" + rounds +
        " ORDER BY a.pair_id, a.answer_index")
    return _rows(warehouse, sql, [config.held_out_splits, *params])


def _alice_answer(row: dict) -> str:
    """The generator's turn: its own words when a model wrote it, else a rendering of the verified pair."""
    if row.get("response"):
        return row["response"]
    change = f"a `{row['detail']}` change" if row.get("detail") else "a small change"
    return render_alice(f"The variant makes {change}; on the input below the two programs behave differently.",
                        row["variant"], row["literal"])


def _bob_answer(row: dict, equivalent: bool = False) -> str:
    analysis = ("Running both programs on this input gives different results." if not equivalent else
                "I could not find an input on which they differ.")
    return render_bob(analysis, equivalent, None if equivalent else row["literal"])


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def generator_sft(pairs: list[dict], config: BuildConfig) -> list[dict]:
    """Hindsight relabelling (the prompt asks for the measured difficulty) and a hard/easy rebalance."""
    rng = random.Random(config.seed)
    hard = [p for p in pairs if p["difficulty"] >= config.hard_threshold]
    easy = [p for p in pairs if p["difficulty"] < config.hard_threshold]
    keep_easy = round(len(hard) * config.easy_share / (1 - config.easy_share)) if config.easy_share < 1 else len(
        easy)
    if not hard:
        keep_easy = max(1, round(len(easy) * config.easy_share)) if easy else 0
    chosen = hard + rng.sample(easy, min(keep_easy, len(easy)))
    rng.shuffle(chosen)
    examples = []
    for p in chosen:
        prompt = alice_messages(p["original"], p["entry_point"], p["difficulty"])
        answer = _alice_answer(p)
        examples.append({"prompt": prompt, "completion": _assistant(answer), "kind": "generate", **_meta(p)})
        if config.difficulty_examples:
            question = {"role": "user", "content": "Which difficulty level (0-10) did this variant reach?"}
            examples.append({"prompt": [*prompt, *_assistant(answer), question],
                             "completion": _assistant(f"Difficulty: {p['difficulty']}"), "kind": "difficulty",
                             **_meta(p)})
    return examples


def generator_dpo(pairs: list[dict], config: BuildConfig) -> list[dict]:
    """For the same problem, a hard variant preferred over an easy one."""
    rng = random.Random(config.seed)
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        by_problem[p["problem_id"]].append(p)
    examples = []
    for group in by_problem.values():
        hard = [p for p in group if p["difficulty"] >= config.hard_threshold]
        easy = [p for p in group if p["difficulty"] < config.hard_threshold]
        rng.shuffle(hard)
        rng.shuffle(easy)
        for good, bad in zip(hard, easy, strict=False):
            examples.append({"prompt": alice_messages(good["original"], good["entry_point"],
                                                      good["target_difficulty"]),
                             "chosen": _assistant(_alice_answer(good)), "rejected": _assistant(_alice_answer(bad)),
                             **_meta(good)})
    return examples


def evaluator_sft(answers: list[dict], config: BuildConfig) -> list[dict]:
    """Rejection sampling: only answers whose input really made the programs diverge, one per (pair, input)."""
    seen, examples = set(), []
    for a in answers:
        if a["diverged"] and (a["pair_id"], a["literal"]) not in seen:
            seen.add((a["pair_id"], a["literal"]))
            examples.append({"prompt": bob_messages(a["original"], a["variant"], a["entry_point"]),
                             "completion": _assistant(_bob_answer(a)), **_meta(a)})
    random.Random(config.seed).shuffle(examples)
    return examples


def evaluator_dpo(answers: list[dict], config: BuildConfig) -> list[dict]:
    """A verified diverging input preferred over a claimed one that did not diverge, for the same pair."""
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for a in answers:
        by_pair[a["pair_id"]].append(a)
    examples = []
    for group in by_pair.values():
        good = [a for a in group if a["diverged"]]
        bad = [a for a in group if not a["diverged"]]
        for chosen, rejected in zip(good, bad, strict=False):
            examples.append({"prompt": bob_messages(chosen["original"], chosen["variant"], chosen["entry_point"]),
                             "chosen": _assistant(_bob_answer(chosen)), "rejected": _assistant(_bob_answer(rejected)),
                             **_meta(chosen)})
    random.Random(config.seed).shuffle(examples)
    return examples


def grpo_prompts(pairs: list[dict], role: str, config: BuildConfig) -> list[dict]:
    """Prompts plus what the sandbox reward needs (original, variant, entry point)."""
    examples, seen = [], set()
    for p in pairs:
        key = p["pair_id"] if role == "evaluator" else p["problem_id"]
        if key in seen:
            continue
        seen.add(key)
        prompt = (bob_messages(p["original"], p["variant"], p["entry_point"]) if role == "evaluator"
                  else alice_messages(p["original"], p["entry_point"], config.hard_threshold))
        examples.append({"prompt": prompt, "original": p["original"], "variant": p["variant"],
                         "entry_point": p["entry_point"], **_meta(p)})
    random.Random(config.seed).shuffle(examples)
    return examples


def _meta(row: dict) -> dict:
    return {"pair_id": row["pair_id"], "problem_id": row["problem_id"], "split": row["split"],
            "round": row["round"], "run_id": row["run_id"]}


def build(warehouse: Warehouse, kind: str, role: str, config: BuildConfig) -> list[dict]:
    if (kind, role) not in KINDS:
        raise ValueError(f"no {kind} set for the {role} (sft|dpo|grpo × generator|evaluator)")
    if role == "generator" or kind == "grpo":
        rows = _pairs(warehouse, config)
        examples = (generator_sft(rows, config) if kind == "sft" else generator_dpo(rows, config) if kind == "dpo"
                    else grpo_prompts(rows, role, config))
    else:
        rows = _answers(warehouse, config)
        examples = evaluator_sft(rows, config) if kind == "sft" else evaluator_dpo(rows, config)
    leaked = sorted({e["problem_id"] for e in examples if e["split"] in config.held_out_splits})
    if leaked:
        raise HeldOutLeak(f"{len(leaked)} held-out problem(s) reached the {kind}/{role} set: {leaked[:3]}")
    return examples[: config.max_examples] if config.max_examples else examples


def _card(kind: str, role: str, counts: dict, config: BuildConfig, snapshot_id: str) -> str:
    return f"""---
pretty_name: sinq {kind} set for the {role} ({snapshot_id})
configs:
- config_name: default
  data_files: train.parquet
---
# sinq training set `{snapshot_id}`: {kind.upper()} for the {role}

Built from a sinq warehouse: every example comes from a pair whose divergence the sandbox verified.
TRL-native conversational format ({'prompt/completion' if kind == 'sft' else 'prompt/chosen/rejected'
if kind == 'dpo' else 'prompt + reward columns'}); load with `datasets.load_dataset("parquet", data_files=...)`.

- counts: `{json.dumps(counts)}`
- config: `{config.model_dump_json()}`
- held-out splits excluded: {', '.join(config.held_out_splits)}
"""


def snapshot(warehouse: Warehouse, kind: str, role: str, config: BuildConfig) -> dict:
    """Build from the warehouse, then write and register (see ``write_snapshot``)."""
    examples = build(warehouse, kind, role, config)
    if not examples:
        raise ValueError(f"the warehouse has no data for a {kind} set for the {role} yet")
    return write_snapshot(warehouse, kind, role, examples, config)


def write_snapshot(warehouse: Warehouse, kind: str, role: str, examples: list[dict], config: BuildConfig) -> dict:
    """Parquet + card + a ``training_sets`` row; the id is a content hash, so the same data is the same snapshot."""
    from datasets import Dataset

    leaked = sorted({e["problem_id"] for e in examples if e["split"] in config.held_out_splits})
    if leaked:
        raise HeldOutLeak(f"{len(leaked)} held-out problem(s) reached the {kind}/{role} set: {leaked[:3]}")
    digest = content_id(kind, role, config.model_dump(mode="json"),
                        [json.dumps(e, sort_keys=True, default=str) for e in examples])
    snapshot_id = f"{kind}-{role}-{digest[:12]}"
    path = Path(config.root) / snapshot_id
    path.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(examples).to_parquet(str(path / "train.parquet"))
    counts = {"examples": len(examples), "problems": len({e["problem_id"] for e in examples}),
              "pairs": len({e["pair_id"] for e in examples})}
    if kind == "sft" and role == "generator":
        counts["difficulty_examples"] = sum(e.get("kind") == "difficulty" for e in examples)
    (path / "README.md").write_text(_card(kind, role, counts, config, snapshot_id))
    runs = sorted({e["run_id"] for e in examples if e["run_id"]})
    rounds = sorted({e["round"] for e in examples if e["round"] is not None})
    warehouse.store({"training_sets": [{
        "snapshot_id": snapshot_id, "kind": kind, "role": role, "config": config.model_dump_json(),
        "config_hash": content_id(config.model_dump(mode="json"))[:16], "source_runs": json.dumps(runs),
        "source_rounds": json.dumps(rounds), "counts": json.dumps(counts), "path": str(path.resolve()),
        "created_at": datetime.now(UTC)}]})
    return {"snapshot_id": snapshot_id, "kind": kind, "role": role, "path": str(path.resolve()), **counts}
