"""Training sets from the warehouse, in TRL's conversational formats (prompt/completion for SFT, prompt/chosen/
rejected for DPO, prompt + reward columns for GRPO), seeded, saved as Parquet with a dataset card and registered in
``training_sets`` with the config, runs, rounds, counts, the problems the set touched and what was left out.

What never reaches a set unless a user asks (``include_duplicates``, ``include_flagged``, decontamination
``enabled = false``): pairs of held-out problems (the stored split or the current rule of ``sources.splits``;
never, whatever is asked), pairs an audit did not reproduce, duplicates, degenerate (flagged) variants, and pairs
whose original or variant overlaps an evaluation item (``training.decontam``). Each left-out pair is counted under
one reason, the first that applies in ``REASONS`` order; held-out problems are checked again before writing.

Evaluator sets hold both kinds of pair (issue 15): "No" with a diverging input on inequivalent pairs, "Yes" on
equivalent pairs (fuzzed equal, never proven), at most ``equivalent_share`` of a set. A pair trains as equivalent
only while it stands: one an answer refuted (its input diverged in the sandbox) is inequivalent, as proven, and never
a "Yes" example. Every example carries its ``pair_kind``; GRPO's sandbox reward scores by it."""

from __future__ import annotations

import difflib
import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sinq.game.errors import SinqError
from sinq.game.prompts import alice_messages, bob_messages, render_alice, render_bob
from sinq.sources.config import SplitConfig
from sinq.training.config import BuildConfig, DecontaminationConfig
from sinq.training.decontam import EvalIndex, is_held_out, prepare
from sinq.warehouse import queries
from sinq.warehouse.records import content_id
from sinq.warehouse.schema import LATEST, current_version
from sinq.warehouse.store import Warehouse

KINDS = {("sft", "generator"), ("dpo", "generator"), ("sft", "evaluator"), ("dpo", "evaluator"),
         ("grpo", "generator"), ("grpo", "evaluator")}


REASONS = ("held_out", "not_diverging", "not_equal", "not_reproduced", "duplicate", "flagged", "contaminated_ast",
           "contaminated_ngram")
"""Why a pair was left out, in the order they are tested."""


class HeldOutLeak(SinqError, RuntimeError):
    """A held-out problem reached a training set: refused, nothing written."""

    exit_code = 4


def _flags(row: dict) -> list[str]:
    value = row.get("flags")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    return [str(f) for f in value or []]


def screen(rows: list[dict], config: BuildConfig, split: SplitConfig, decontamination: DecontaminationConfig,
           index: EvalIndex | None) -> tuple[list[dict], dict[str, list[str]]]:
    """The rows that may train, and the pair ids left out, by reason (one reason per pair, ``REASONS`` order)."""
    reasons: dict[str, str | None] = {}
    for row in rows:
        if row["pair_id"] not in reasons:
            reasons[row["pair_id"]] = _reason(row, config, split, decontamination, index)
    removed: dict[str, list[str]] = defaultdict(list)
    for pair_id, reason in reasons.items():
        if reason is not None:
            removed[reason].append(pair_id)
    kept = [r for r in rows if reasons[r["pair_id"]] is None]
    return kept, {reason: sorted(removed[reason]) for reason in REASONS if removed.get(reason)}


def _reason(row: dict, config: BuildConfig, split: SplitConfig, decontamination: DecontaminationConfig,
            index: EvalIndex | None) -> str | None:
    if is_held_out(row.get("split"), row["problem_id"], row.get("source"), split, config.held_out_splits):
        return "held_out"
    if row.get("status") == "not_diverging":
        return "not_diverging"
    if row.get("status") == "not_equal":
        return "not_equal"
    if row.get("audit_reproduced") is False:
        return "not_reproduced"
    if row.get("duplicate_of") and not config.include_duplicates:
        return "duplicate"
    if _flags(row) and not config.include_flagged:
        return "flagged"
    if index is not None and decontamination.enabled and len(index):
        for code in (row["original"], row["variant"]):
            hit = index.contaminating(code, decontamination)
            if hit is not None:
                return f"contaminated_{hit.how}"
    return None


def kind_of(row: dict) -> str:
    """The kind a row's pair trains as: ``equivalent`` when stored so and standing, ``inequivalent`` when stored so
    or shown otherwise (refuted by an answer's input, its stored verdict not ``same``, or this row's input
    diverged)."""
    if row.get("pair_kind") != "equivalent" or row.get("status") in ("refuted", "not_equal") or row.get("diverged"):
        return "inequivalent"
    return "equivalent"


def _kinds(rows: list[dict]) -> dict[str, str]:
    """Per pair: equivalent only when every row of it says so (one diverging answer settles it)."""
    kinds: dict[str, str] = {}
    for row in rows:
        if kinds.get(row["pair_id"]) != "inequivalent":
            kinds[row["pair_id"]] = kind_of(row)
    return kinds


def _capped(items: list, others: int, share: float, rng: random.Random) -> list:
    """At most ``share`` of a set of ``others`` + k items (k / (others + k) <= share), a seeded sample: with no
    other examples a share below 1 admits none, so a cap is never exceeded."""
    if share <= 0 or not items:
        return []
    limit = len(items) if share >= 1 else math.floor(others * share / (1 - share) + 1e-9)
    return list(items) if len(items) <= limit else rng.sample(items, limit)


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


DIFFICULTY_QUESTION = {"role": "user", "content": "Which difficulty level (0-10) did this variant reach?"}


def generator_sft(pairs: list[dict], config: BuildConfig) -> list[dict]:
    """Hindsight relabelling (the prompt asks for the measured difficulty) and a hard/easy rebalance. A "predict
    the difficulty" example asks for the generation at difficulty Any: the relabelled prompt would state the answer.
    Its generation turn is part of the prompt, so the loss falls on the difficulty only."""
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
            examples.append({"prompt": [*alice_messages(p["original"], p["entry_point"], None), *_assistant(answer),
                                        DIFFICULTY_QUESTION],
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
    """Rejection sampling: answers that were right. "No" with an input that really made the programs diverge, one
    per (pair, input); "Yes" on a standing equivalent pair, one per pair, at most ``equivalent_share`` of the set."""
    kinds = _kinds(answers)
    seen, examples, said_yes = set(), [], []
    for a in answers:
        if a["diverged"] and (a["pair_id"], a["literal"]) not in seen:
            seen.add((a["pair_id"], a["literal"]))
            examples.append({"prompt": bob_messages(a["original"], a["variant"], a["entry_point"]),
                             "completion": _assistant(_bob_answer(a)), **_meta(a, "inequivalent")})
        elif (a.get("claimed_equivalent") is True and kinds[a["pair_id"]] == "equivalent"
              and (a["pair_id"], None) not in seen):
            seen.add((a["pair_id"], None))
            said_yes.append({"prompt": bob_messages(a["original"], a["variant"], a["entry_point"]),
                             "completion": _assistant(_bob_answer(a, equivalent=True)), **_meta(a, "equivalent")})
    examples += _capped(said_yes, len(examples), config.equivalent_share, random.Random(config.seed))
    random.Random(config.seed).shuffle(examples)
    return examples


def _rendered(answer: dict) -> str | None:
    """A wrong answer as it was given: a "Yes", or a "No" with its input; None for one without either (a
    non-answer cannot be written back faithfully, so it is never a rejected turn)."""
    if answer.get("claimed_equivalent") is True:
        return _bob_answer(answer, equivalent=True)
    return _bob_answer(answer) if answer.get("literal") is not None else None


def evaluator_dpo(answers: list[dict], config: BuildConfig) -> list[dict]:
    """For the same pair, a right answer preferred over a wrong one, both real answers. Inequivalent pair: a
    verified diverging input over a claimed one that did not diverge, or over a "Yes" (a miss). Equivalent pair:
    a "Yes" over a false alarm (a "No" whose input did not diverge, one per distinct input); a pair without a real
    false alarm gives no example (no "No" is made up), and these are at most ``equivalent_share`` of the set."""
    kinds = _kinds(answers)
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for a in answers:
        by_pair[a["pair_id"]].append(a)
    examples, equivalent = [], []
    for pair_id, group in by_pair.items():
        if kinds[pair_id] == "equivalent":
            good = [a for a in group if a.get("claimed_equivalent") is True]
            alarms = {a["literal"]: _bob_answer(a) for a in group if a.get("claimed_equivalent") is False
                      and a.get("literal") is not None and not a["diverged"]}
            for chosen, rejected in zip(good, alarms.values(), strict=False):
                equivalent.append(_preference(chosen, _bob_answer(chosen, equivalent=True), rejected, "equivalent"))
            continue
        good = [a for a in group if a["diverged"]]
        bad = [text for a in group if not a["diverged"] and (text := _rendered(a)) is not None]
        for chosen, rejected in zip(good, bad, strict=False):
            examples.append(_preference(chosen, _bob_answer(chosen), rejected, "inequivalent"))
    examples += _capped(equivalent, len(examples), config.equivalent_share, random.Random(config.seed))
    random.Random(config.seed).shuffle(examples)
    return examples


def _preference(chosen: dict, good: str, bad: str, kind: str) -> dict:
    return {"prompt": bob_messages(chosen["original"], chosen["variant"], chosen["entry_point"]),
            "chosen": _assistant(good), "rejected": _assistant(bad), **_meta(chosen, kind)}


def grpo_prompts(pairs: list[dict], role: str, config: BuildConfig) -> list[dict]:
    """Prompts plus what the sandbox reward needs (original, variant, entry point, and the pair's kind, which the
    prompt never shows). The evaluator's equivalent pairs are at most ``equivalent_share`` of its prompts; the
    generator's prompts are problems, so their kind is always inequivalent."""
    examples, equivalent, seen = [], [], set()
    for p in pairs:
        key = p["pair_id"] if role == "evaluator" else p["problem_id"]
        if key in seen:
            continue
        seen.add(key)
        kind = kind_of(p) if role == "evaluator" else "inequivalent"
        prompt = (bob_messages(p["original"], p["variant"], p["entry_point"]) if role == "evaluator"
                  else alice_messages(p["original"], p["entry_point"], config.hard_threshold))
        (equivalent if kind == "equivalent" else examples).append(
            {"prompt": prompt, "original": p["original"], "variant": p["variant"], "entry_point": p["entry_point"],
             **_meta(p, kind)})
    examples += _capped(equivalent, len(examples), config.equivalent_share, random.Random(config.seed))
    random.Random(config.seed).shuffle(examples)
    return examples


def _meta(row: dict, kind: str | None = None) -> dict:
    """Provenance columns of an example (also what the card's statistics count); ``pair_kind`` is the kind the pair
    trains as (``kind_of``), ``transformations`` those an equivalent pair was made by."""
    return {"pair_id": row["pair_id"], "problem_id": row["problem_id"], "split": row["split"],
            "round": row["round"], "run_id": row["run_id"], "source": row.get("source"),
            "difficulty": row.get("difficulty"), "mutation": None if row.get("response") else row.get("detail"),
            "edit_lines": edit_lines(row["original"], row["variant"]), "duplicate_of": row.get("duplicate_of"),
            "flags": json.dumps(_flags(row)), "pair_kind": kind or kind_of(row),
            "transformations": json.dumps(_transformations(row))}


def _transformations(row: dict) -> list[str]:
    value = row.get("transformations")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    return [str(t) for t in value or []]


def edit_lines(original: str, variant: str) -> int:
    """Lines the variant changes (replaced lines count once, on the longer side)."""
    matcher = difflib.SequenceMatcher(None, original.splitlines(), variant.splitlines(), autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


@dataclass
class Hygiene:
    """What a build left out and what it checked against: recorded on the snapshot's row and its card."""

    split: SplitConfig = field(default_factory=SplitConfig)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    removed: dict[str, list[str]] = field(default_factory=dict)
    eval_items: dict[str, int] = field(default_factory=dict)


def select(warehouse: Warehouse, kind: str, role: str, config: BuildConfig,
           decontamination: DecontaminationConfig | None = None, split: SplitConfig | None = None
           ) -> tuple[list[dict], Hygiene]:
    """The examples of a set and what was left out. Evaluation items (held-out problems, benchmark files) are
    registered first, so a build is also the moment its problems' held-out siblings become items."""
    if (kind, role) not in KINDS:
        raise ValueError(f"no {kind} set for the {role} (sft|dpo|grpo × generator|evaluator)")
    hygiene = Hygiene(split=split or SplitConfig(), decontamination=decontamination or DecontaminationConfig())
    _migrated(warehouse)
    index = None
    if hygiene.decontamination.enabled:
        index = prepare(warehouse, hygiene.decontamination, hygiene.split, config.held_out_splits)
        hygiene.eval_items = dict(sorted(Counter(i.suite for i in index.items.values()).items()))
    generator_rows = role == "generator" or kind == "grpo"
    rows = (queries.training_pairs(warehouse, config.rounds) if generator_rows
            else queries.training_answers(warehouse, config.rounds))
    if kind == "grpo" and role == "evaluator" and config.equivalent_share > 0:
        rows += queries.training_equivalent_pairs(warehouse, config.rounds)
    rows, hygiene.removed = screen(rows, config, hygiene.split, hygiene.decontamination, index)
    if generator_rows:
        examples = (generator_sft(rows, config) if kind == "sft" else generator_dpo(rows, config) if kind == "dpo"
                    else grpo_prompts(rows, role, config))
    else:
        examples = evaluator_sft(rows, config) if kind == "sft" else evaluator_dpo(rows, config)
    _refuse_held_out(examples, kind, role, config, hygiene.split)
    return (examples[: config.max_examples] if config.max_examples else examples), hygiene


def _migrated(warehouse: Warehouse) -> None:
    """An older warehouse is brought to the schema that ``all_pairs`` and ``eval_items`` need; a missing one is an
    error (never a new empty file)."""
    with warehouse.reading() as con:
        version = current_version(con)
    if version < LATEST:
        warehouse.store({})


def build(warehouse: Warehouse, kind: str, role: str, config: BuildConfig,
          decontamination: DecontaminationConfig | None = None, split: SplitConfig | None = None) -> list[dict]:
    return select(warehouse, kind, role, config, decontamination, split)[0]


def _refuse_held_out(examples: list[dict], kind: str, role: str, config: BuildConfig, split: SplitConfig) -> None:
    leaked = sorted({e["problem_id"] for e in examples
                     if is_held_out(e.get("split"), e["problem_id"], e.get("source"), split, config.held_out_splits)})
    if leaked:
        raise HeldOutLeak(f"{len(leaked)} held-out problem(s) reached the {kind}/{role} set: {leaked[:3]}")


EDIT_BUCKETS = (("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6-10", 6, 10), (">10", 11, None))

REASON_TEXT = {
    "held_out": "the problem is held out for evaluation (stored split or the split rule)",
    "not_diverging": "the stored verdict is not a divergence",
    "not_equal": "a pair stored as equivalent whose stored verdict is not `same`",
    "not_reproduced": "the latest audit did not reproduce the pair",
    "duplicate": "the variant duplicates an earlier pair (exact AST or MinHash near-duplicate)",
    "flagged": "the variant is flagged degenerate",
    "contaminated_ast": "the original or the variant has the normalised AST of an evaluation item",
    "contaminated_ngram": "the original or the variant shares too many 13-grams with an evaluation item",
}


def statistics(examples: list[dict], hygiene: Hygiene | None = None) -> dict:
    """What the card shows: examples and pairs per kind (inequivalent, equivalent), examples per round and source;
    per pair the difficulty, mutation operator or equivalence transformations, and edit size; the duplicates and
    flags a user asked to keep; what was left out, by reason."""
    first: dict[str, dict] = {}
    for example in examples:
        first.setdefault(example["pair_id"], example)
    pairs = list(first.values())

    def tally(values) -> dict[str, int]:
        counted = Counter(str(v) for v in values if v is not None)
        return dict(sorted(counted.items(), key=lambda kv: (len(kv[0]), kv[0])))

    edits = Counter()
    for pair in pairs:
        size = pair.get("edit_lines")
        for label, low, high in EDIT_BUCKETS:
            if size is not None and size >= low and (high is None or size <= high):
                edits[label] += 1
    flags = Counter(flag for pair in pairs for flag in json.loads(pair.get("flags") or "[]"))
    transformations = Counter(t for pair in pairs if pair.get("pair_kind") == "equivalent"
                              for t in json.loads(pair.get("transformations") or "[]"))
    return {
        "examples_by_kind": tally(e.get("pair_kind") or "inequivalent" for e in examples),
        "pairs_by_kind": tally(p.get("pair_kind") or "inequivalent" for p in pairs),
        "pairs_by_transformation": dict(transformations.most_common()),
        "examples_by_round": tally(e.get("round") for e in examples),
        "examples_by_source": tally(e.get("source") or "unknown" for e in examples),
        "pairs_by_difficulty": tally(p.get("difficulty") for p in pairs),
        "pairs_by_mutation": dict(Counter(p["mutation"] for p in pairs if p.get("mutation")).most_common()),
        "pairs_by_edit_lines": {label: edits[label] for label, _, _ in EDIT_BUCKETS if edits[label]},
        "duplicates_included": sum(bool(p.get("duplicate_of")) for p in pairs),
        "flags_included": dict(flags.most_common()),
        "removed": {reason: len(ids) for reason, ids in (hygiene.removed if hygiene else {}).items()},
    }


def _table(title: str, head: str, counts: dict, empty: str = "none") -> str:
    if not counts:
        return f"**{title}**: {empty}\n"
    rows = "\n".join(f"| {key} | {value} |" for key, value in counts.items())
    return f"**{title}**\n\n| {head} | count |\n|---|---|\n{rows}\n"


def _card(kind: str, role: str, counts: dict, config: BuildConfig, snapshot_id: str, stats: dict,
          hygiene: Hygiene) -> str:
    removed = "\n".join(f"| {reason} | {n} | {REASON_TEXT.get(reason, '')} |" for reason, n in stats["removed"].items())
    removed_table = ("| reason | pairs | why |\n|---|---|---|\n" + removed) if removed else "nothing was left out"
    decontam = hygiene.decontamination
    checked = (f"checked against {sum(hygiene.eval_items.values())} evaluation items "
               f"({', '.join(f'{suite}: {n}' for suite, n in hygiene.eval_items.items()) or 'none registered'}): "
               f"normalised AST match {'on' if decontam.ast_match else 'off'}, {decontam.ngram}-gram overlap "
               f">= {decontam.max_ngram_overlap} removes" if decontam.enabled else
               "**decontamination was switched off for this set**")
    split_rule = f"share {hygiene.split.held_out_share}, salt `{hygiene.split.salt}`"
    share_line = (f" Equivalent pairs are at most {config.equivalent_share:.0%} of this set (`equivalent_share`)."
                  if role == "evaluator" else "")
    kept_or_not = (f"duplicates {'kept (asked for)' if config.include_duplicates else 'left out'}, flagged "
                   f"variants {'kept (asked for)' if config.include_flagged else 'left out'}")
    return f"""---
pretty_name: sinq {kind} set for the {role} ({snapshot_id})
tags:
- code
- program-semantics
configs:
- config_name: default
  data_files: train.parquet
---
# sinq training set `{snapshot_id}`: {kind.upper()} for the {role}

Built from a sinq warehouse: every example comes from a pair whose divergence the sandbox verified (inequivalent),
or that the sandbox found equal on every input it was fuzzed on (equivalent: never proven; a pair an answer's input
refuted counts as inequivalent).{share_line}
TRL-native conversational format ({'prompt/completion' if kind == 'sft' else 'prompt/chosen/rejected'
if kind == 'dpo' else 'prompt + reward columns'}); load with `datasets.load_dataset("parquet", data_files=...)`.

- counts: `{json.dumps(counts)}`
- config: `{config.model_dump_json()}`
- held out: stored splits {', '.join(config.held_out_splits)}, and the split rule ({split_rule})
- decontamination: {checked}
- {kept_or_not}

## Statistics

{_table("Examples per pair kind", "kind", stats["examples_by_kind"])}
{_table("Pairs per kind", "kind", stats["pairs_by_kind"])}
{_table("Examples per round", "round", stats["examples_by_round"])}
{_table("Examples per source", "source", stats["examples_by_source"])}
{_table("Pairs per measured difficulty", "difficulty", stats["pairs_by_difficulty"])}
{_table("Pairs per mutation operator (baseline pairs)", "operator", stats["pairs_by_mutation"])}
{_table("Equivalent pairs per transformation", "transformation", stats["pairs_by_transformation"])}
{_table("Pairs per edit size (changed lines)", "lines", stats["pairs_by_edit_lines"])}
{_table("Flags among kept pairs", "flag", stats["flags_included"])}
Duplicates among kept pairs: {stats["duplicates_included"]}

## Left out

{removed_table}

`statistics`: `{json.dumps(stats)}`
"""


def snapshot(warehouse: Warehouse, kind: str, role: str, config: BuildConfig,
             decontamination: DecontaminationConfig | None = None, split: SplitConfig | None = None) -> dict:
    """Build from the warehouse, then write and register (see ``write_snapshot``)."""
    examples, hygiene = select(warehouse, kind, role, config, decontamination, split)
    if not examples:
        left_out = f" (left out: {', '.join(f'{r} {len(i)}' for r, i in hygiene.removed.items())})" \
            if hygiene.removed else ""
        raise ValueError(f"the warehouse has no data for a {kind} set for the {role} yet{left_out}")
    return write_snapshot(warehouse, kind, role, examples, config, hygiene)


def write_snapshot(warehouse: Warehouse, kind: str, role: str, examples: list[dict], config: BuildConfig,
                   hygiene: Hygiene | None = None) -> dict:
    """Parquet + card + a ``training_sets`` row (with the problems touched and what was left out); the id is a
    content hash, so the same data is the same snapshot. Held-out problems are refused here again."""
    from datasets import Dataset

    hygiene = hygiene or Hygiene()
    _refuse_held_out(examples, kind, role, config, hygiene.split)
    recorded = {**config.model_dump(mode="json"), "decontamination": hygiene.decontamination.model_dump(mode="json"),
                "split": hygiene.split.model_dump(mode="json")}
    digest = content_id(kind, role, recorded, [json.dumps(e, sort_keys=True, default=str) for e in examples])
    snapshot_id = f"{kind}-{role}-{digest[:12]}"
    path = Path(config.root) / snapshot_id
    path.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(examples).to_parquet(str(path / "train.parquet"))
    problem_ids = sorted({e["problem_id"] for e in examples})
    counts = {"examples": len(examples), "problems": len(problem_ids), "pairs": len({e["pair_id"] for e in examples})}
    if kind == "sft" and role == "generator":
        counts["difficulty_examples"] = sum(e.get("kind") == "difficulty" for e in examples)
    stats = statistics(examples, hygiene)
    (path / "README.md").write_text(_card(kind, role, counts, config, snapshot_id, stats, hygiene))
    runs = sorted({e["run_id"] for e in examples if e["run_id"]})
    rounds = sorted({e["round"] for e in examples if e["round"] is not None})
    warehouse.store({"training_sets": [{
        "snapshot_id": snapshot_id, "kind": kind, "role": role, "config": json.dumps(recorded),
        "config_hash": content_id(recorded)[:16], "source_runs": json.dumps(runs),
        "source_rounds": json.dumps(rounds), "counts": json.dumps({**counts, "statistics": stats}),
        "path": str(path.resolve()), "problem_ids": json.dumps(problem_ids), "removed": json.dumps(hygiene.removed),
        "created_at": datetime.now(UTC)}]})
    return {"snapshot_id": snapshot_id, "kind": kind, "role": role, "path": str(path.resolve()), **counts,
            "removed": stats["removed"]}
