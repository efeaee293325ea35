"""The ``game`` suite: the game itself, intrinsic and held out (the paper's 88.4 → 91.7 % evaluator success on
held-out seeds). `sinq eval freeze` copies verified pairs of held-out problems into a frozen set named by the hash
of its content; its variants go into the decontamination list, so no training set ever holds them.

``evaluator`` mode: the evaluator answers every frozen pair ``answers`` times and each claimed input is settled in
the sandbox; success rate with every answer in the denominator (a non-answer is a failure), overall and by the
pair's frozen difficulty. One item per pair, one query per answer: two runs compare by a paired bootstrap.

``generator`` mode: the generator proposes ``samples`` variants for each held-out problem of the set, every claim
is settled, and each valid pair is answered by a pinned reference evaluator (the baseline by default) whose
difficulty label measures it. A sample succeeds when it is valid and at least ``hard`` (what the generator is
trained to make); validity and mean difficulty are reported next to it.

Both modes play through ``agents.play``: the same propose → settle → evaluate → settle → label path as the nightly
run. Programs and claimed inputs run only in the sandbox pool passed in."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

from sinq.agents.base import EvaluatorRequest
from sinq.agents.config import AgentConfig, Sampling
from sinq.agents.play import evaluate as play_evaluate
from sinq.agents.play import generate as play_generate
from sinq.evals.common import Clock, EvalError, EvalRun, Item, Result, distinct, rate
from sinq.evals.config import EvalConfig, GameEvalConfig
from sinq.game.hashing import json_sha256
from sinq.game.stats import bootstrap_mean
from sinq.sandbox.pool import WorkerPool
from sinq.sources.config import SplitConfig
from sinq.training.decontam import contaminated_items, is_held_out, make_item, register_items
from sinq.warehouse import queries
from sinq.warehouse.evals import held_out_candidates, list_sets, read_set, store_set
from sinq.warehouse.store import Warehouse

SUITE = "game"
SUITE_VERSION = "1"
MODES = ("evaluator", "generator")
HELD_OUT_SPLITS = ("test", "validation", "held_out")
"""Stored problem splits that count as held out (as ``[training.build] held_out_splits`` by default)."""


def _order(seed: int, pair_id: str) -> str:
    return hashlib.sha256(f"{seed}\0{pair_id}".encode()).hexdigest()


def freeze(warehouse: Warehouse, config: GameEvalConfig | None = None, splits: SplitConfig | None = None,
           name: str | None = None, held_out_splits: Iterable[str] = HELD_OUT_SPLITS) -> dict:
    """Freeze the held-out verified pairs into a set (at most ``freeze_per_problem`` per problem and
    ``freeze_max_pairs`` in all, chosen by a seeded hash) and register its variants for decontamination. Problems a
    registered training set touched are left out (counted). The same content freezes to the same set id."""
    config = config or GameEvalConfig()
    rows = held_out_candidates(warehouse)
    held = [r for r in rows if is_held_out(r["split"], r["problem_id"], r["source"], splits or SplitConfig(),
                                held_out_splits)]
    if not held:
        raise EvalError(f"no verified pair of a held-out problem in {warehouse.path} ({len(rows)} verified, "
                        "unflagged pairs in all)", hint="run `sinq run` first: it plays held-out problems too")
    touched = {h["problem_id"] for h in contaminated_items(warehouse, problem_ids=sorted({r["problem_id"]
                                                                                         for r in held}))
               if h["problem_id"]}
    clean = sorted((r for r in held if r["problem_id"] not in touched),
                   key=lambda r: _order(config.freeze_seed, r["pair_id"]))
    chosen, per_problem, variants = [], defaultdict(int), set()
    for row in clean:
        item_id = make_item(SUITE, row["variant_code"]).item_id
        if per_problem[row["problem_id"]] >= config.freeze_per_problem or item_id in variants:
            continue
        per_problem[row["problem_id"]] += 1
        variants.add(item_id)
        chosen.append(row | {"item_id": item_id})
        if len(chosen) >= config.freeze_max_pairs:
            break
    if not chosen:
        raise EvalError(f"every held-out pair's problem is in a training set ({len(touched)} problems): nothing "
                        "clean to freeze")
    chosen.sort(key=lambda r: r["pair_id"])
    content = json_sha256([[r["pair_id"], r["original_code"], r["variant_code"], r["entry_point"],
                            r["diverging_input"]] for r in chosen])
    set_id = f"game-{content[:12]}"
    difficulties: dict[str, int] = defaultdict(int)
    for r in chosen:
        difficulties[str(r["difficulty"])] += 1
    detail = {"held_out_pairs": len(held), "left_out_trained_problems": len(touched),
              "by_difficulty": dict(sorted(difficulties.items())), "per_problem": config.freeze_per_problem,
              "seed": config.freeze_seed}
    pairs = [{**r, "position": i} for i, r in enumerate(chosen)]
    created = store_set(warehouse, {"set_id": set_id, "suite": SUITE, "name": name, "content_hash": content,
                                    "pairs": len(pairs), "problems": len(per_problem), "detail": detail}, pairs)
    register_items(warehouse, [make_item(SUITE, r["variant_code"], f"{SUITE}:{set_id}", r["problem_id"])
                               for r in chosen])
    return {"set_id": set_id, "content_hash": content, "pairs": len(pairs), "problems": len(per_problem),
            "created": created, **detail}


def frozen(warehouse: Warehouse, set_id: str = "latest") -> dict:
    """A stored set (``latest``: the newest); an EvalError that says how to make one when there is none."""
    if set_id == "latest":
        sets = list_sets(warehouse, SUITE)
        if not sets:
            raise EvalError(f"no frozen game set in {warehouse.path}",
                            hint="sinq eval freeze (after a run has verified pairs of held-out problems)")
        set_id = sets[-1]["set_id"]
    try:
        return read_set(warehouse, set_id)
    except KeyError:
        raise EvalError(f"no frozen game set {set_id!r} in {warehouse.path}",
                        hint="sinq eval sets shows them") from None


def frozen_or_freeze(warehouse: Warehouse, config: GameEvalConfig, splits: SplitConfig | None) -> dict | None:
    """The configured set; for ``latest`` with none stored, a set frozen now (None when nothing can be frozen)."""
    if config.set == "latest" and not list_sets(warehouse, SUITE):
        try:
            freeze(warehouse, config, splits, name="frozen by the gate")
        except EvalError:
            return None
    return frozen(warehouse, config.set)


def sampled(agent: AgentConfig, config: EvalConfig) -> AgentConfig:
    """The agent with the suite's sampling (the same for every model measured, so runs compare)."""
    game = config.game
    return agent.model_copy(update={"sampling": Sampling(temperature=game.temperature, top_p=game.top_p,
                                                         max_tokens=game.max_tokens, seed=config.seed)})


def _sampling(config: EvalConfig, extra: dict | None = None) -> dict:
    game = config.game
    return {"temperature": game.temperature, "top_p": game.top_p, "max_tokens": game.max_tokens} | (extra or {})


def evaluate_evaluator(pool: WorkerPool, frozen_set: dict, evaluator, config: EvalConfig | None = None, *,
                       model: str | None = None, adapter: str | None = None, role: str | None = "evaluator",
                       limit: int | None = None) -> EvalRun:
    """The evaluator's success rate on the frozen pairs, every answer counted."""
    config = config or EvalConfig()
    clock = Clock()
    rows, duplicates = distinct(frozen_set["pair_rows"], lambda r: r["item_id"])
    rows = rows[:limit] if limit else rows
    requests = [EvaluatorRequest(r["pair_id"], r["original_code"], r["variant_code"], r["entry_point"] or "",
                                 config.game.answers, [str(s) for s in r["seed_inputs"]]) for r in rows]
    played = play_evaluate(evaluator, requests, pool, evaluator.name)
    items, results = [], []
    by_difficulty: dict[int, list[bool]] = defaultdict(list)
    for row, answers, literals, successes, measured in zip(rows, played.answers, played.literals, played.successes,
                                                           played.difficulties, strict=True):
        item = Item(SUITE, row["variant_code"], f"{SUITE}:{frozen_set['set_id']}", item_id=row["item_id"],
                    problem_id=row["problem_id"])
        items.append(item)
        for index, (answer, literal, success) in enumerate(zip(answers, literals, successes, strict=True)):
            verdict = played.verdicts.get((row["pair_id"], literal)) if literal else None
            results.append(Result(item.item_id, index, success, float(success), {
                "pair_id": row["pair_id"], "input": literal, "reason": answer.reason,
                "verdict": f"{verdict.verdict}:{verdict.reason}" if verdict else None}))
        by_difficulty[row["difficulty"] if row["difficulty"] is not None else -1].extend(successes)
        results[-1].detail["difficulty_measured"] = measured
    won = sum(r.correct for r in results)
    metrics = {"success_rate": rate(won, len(results), config.confidence),
               "solved_rate": rate(sum(any(s) for s in played.successes), len(rows), config.confidence)}
    for difficulty, successes in sorted(by_difficulty.items()):
        name = f"success_rate@difficulty={difficulty}" if difficulty >= 0 else "success_rate@difficulty=unknown"
        metrics[name] = rate(sum(successes), len(successes), config.confidence)
    detail = {"set_id": frozen_set["set_id"], "content_hash": frozen_set["content_hash"], "pairs": len(rows),
              "answers_per_pair": config.game.answers, "duplicates": duplicates,
              "non_answers": sum(1 for g in played.answers for a in g if a.input is None)} | clock.figures(
                  len(items), len(results))
    return EvalRun(SUITE, SUITE_VERSION, model, adapter, "evaluator", items, results, metrics, role=role,
                   sampling=_sampling(config, {"answers": config.game.answers}),
                   seeds={"sampling": config.seed, "bootstrap": config.seed}, detail=detail)


def reference_name(config: EvalConfig) -> str:
    """What pins the reference evaluator: its kind and budgets (baseline) or model + adapter + sampling."""
    reference = config.game.reference
    if reference.kind == "baseline":
        return f"baseline-fuzz:{json_sha256(config.game.reference_baseline.model_dump())[:8]}"
    return f"llm:{reference.model}+{reference.adapter}:{json_sha256(reference.sampling.model_dump())[:8]}"


def evaluate_generator(pool: WorkerPool, frozen_set: dict, generator, reference, warehouse: Warehouse,
                       config: EvalConfig | None = None, *, model: str | None = None, adapter: str | None = None,
                       role: str | None = "generator", limit: int | None = None) -> EvalRun:
    """The generator's validity, mean difficulty and success (valid and hard) on the set's held-out problems."""
    config = config or EvalConfig()
    game = config.game
    clock = Clock()
    problem_ids = list(dict.fromkeys(r["problem_id"] for r in frozen_set["pair_rows"]))
    problems, duplicates = distinct(queries.problems(warehouse, problem_ids),
                                    lambda p: make_item(SUITE, p.program).item_id)  # the key results are stored by
    problems = problems[:limit] if limit else problems
    if not problems:
        raise EvalError(f"the problems of set {frozen_set['set_id']} are not in {warehouse.path}")
    groups = play_generate(generator, problems, game.target_difficulty, game.samples, pool)
    valid = [(p, i, s) for p, group in zip(problems, groups, strict=True) for i, s in enumerate(group)
             if s.reason is None and s.verdict is not None and s.verdict.verdict == "diverges"]
    requests = [EvaluatorRequest(f"{p.problem_id}:{i}", p.program, s.program or "", p.entry_point or "",
                                 game.answers, p.seed_inputs) for p, i, s in valid]
    labels = dict(zip(((p.problem_id, i) for p, i, _ in valid),
                      play_evaluate(reference, requests, pool, reference.name).difficulties, strict=True)) \
        if requests else {}
    items, results, difficulties = [], [], []
    for problem, group in zip(problems, groups, strict=True):
        item = Item(SUITE, problem.program, f"{SUITE}:{frozen_set['set_id']}:problem", problem_id=problem.problem_id)
        items.append(item)
        for index, sample in enumerate(group):
            difficulty = labels.get((problem.problem_id, index))
            if difficulty is not None:
                difficulties.append(float(difficulty))
            success = difficulty is not None and difficulty >= game.hard
            results.append(Result(item.item_id, index, success, None if difficulty is None else float(difficulty),
                                  {"valid": difficulty is not None, "difficulty": difficulty,
                                   "reason": sample.reason}))
    n = len(results)
    mean, low, high = bootstrap_mean(difficulties, config.bootstrap_resamples, config.confidence, config.seed) \
        if difficulties else (None, 0.0, 10.0)
    metrics = {"success_rate": rate(sum(r.correct for r in results), n, config.confidence),
               "validity": rate(len(difficulties), n, config.confidence),
               "mean_difficulty": {"value": mean, "low": low, "high": high, "n": len(difficulties),
                                   "interval": "bootstrap"},
               "share_difficulty_10": rate(sum(1 for d in difficulties if d == 10), n, config.confidence)}
    reasons: dict[str, int] = defaultdict(int)
    for r in results:
        if not r.detail["valid"]:
            reasons[str(r.detail["reason"])] += 1
    detail = {"set_id": frozen_set["set_id"], "problems": len(problems), "duplicates": duplicates,
              "samples_per_problem": game.samples,
              "reference": reference_name(config), "hard": game.hard,
              "invalid_reasons": dict(reasons)} | clock.figures(len(items), n)
    return EvalRun(SUITE, SUITE_VERSION, model, adapter, "generator", items, results, metrics, role=role,
                   sampling=_sampling(config, {"samples": game.samples, "target_difficulty": game.target_difficulty,
                                               "hard": game.hard, "reference": reference_name(config),
                                               "answers": game.answers}),
                   seeds={"sampling": config.seed, "bootstrap": config.seed}, detail=detail)
