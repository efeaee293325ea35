"""The nightly stages as plain functions over batches of problem ids (the Prefect tasks in tasks/nightly.py wrap
them). A generate or evaluate batch is three steps: ``plan_*`` asks the warehouse what is already done (content-hash
keys, so a rerun or a resumed run adds nothing twice and calls no agent twice) and gathers what the batch needs;
``play_*`` lets the agents propose and the sandbox settle (agents/play.py) and turns the outcome into rows, touching
no warehouse, so it runs on any host; ``store_played`` writes those rows in one transaction from the flow's process.
``generate_batch``/``evaluate_batch`` do all three in this process."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sinq.agents import play
from sinq.agents.base import EvaluatorRequest, GeneratorSample
from sinq.agents.cache import CarriedResponses, cached
from sinq.agents.config import AgentConfig
from sinq.agents.exploration import Exploration
from sinq.agents.identity import agent_id, agent_rows, maker_id
from sinq.game.parsing import normalize_input
from sinq.game.scoring import score
from sinq.sandbox import tally
from sinq.sandbox.image import runner_sha
from sinq.sandbox.shared import holding, no_lost_executions, shared_pool
from sinq.sandbox.tally import charged_to
from sinq.sandbox.verify import Pair, raise_for_sandbox
from sinq.settings import Settings
from sinq.sources.problem import Problem
from sinq.tasks.hygiene import preparer
from sinq.tasks.passes import explore_with, plan_pass
from sinq.tasks.validation import needs_recheck, validate, validation_key
from sinq.warehouse import equivalents as equivalent_queries
from sinq.warehouse import queries
from sinq.warehouse.records import (
    attempt_row,
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


def warehouse_for(settings: Settings) -> Warehouse:
    return Warehouse.from_config(settings.warehouse)


def role_id(settings: Settings, role: str) -> str:
    """The id of the agent playing ``role`` under these settings."""
    return agent_id(role, getattr(settings.agents, role), settings.agents.baseline, warehouse_for(settings))


# ---- problems
def source_problems(settings: Settings, run_id: str) -> dict:
    """Load the source; validate only problems without a trusted validation under this run's ``validation_key``
    (limits, runner version, backend): other limits validate again, and an ``invalid`` that may be the machine's
    doing (timeout, crash, resource limit) is re-checked by every later run before it is believed."""
    from sinq.sources.loaders import load

    problems = load(settings.run.source, limit=settings.run.limit, splits=settings.sources.split)
    warehouse = warehouse_for(settings)
    key = validation_key(settings.sandbox)
    stored, known = queries.stored_and_validated(warehouse, [p.problem_id for p in problems], key)
    trusted = {pid: (v["status"], v["reason"]) for pid, v in known.items()
               if v["status"] == "valid" or v["run_id"] == run_id or not needs_recheck(v["reason"])}
    fresh = [p for p in problems if p.problem_id not in trusted]
    if any(p.reason is None for p in fresh):
        pool, lock = shared_pool(settings.sandbox)
        with holding(lock), no_lost_executions(pool, "validation"):
            validate(fresh, pool)
    now = datetime.now(UTC)
    limits, sha = settings.sandbox.limits.model_dump_json(), runner_sha()
    warehouse.store({
        "problems": [problem_row(p, run_id, now) for p in fresh if p.problem_id not in stored],
        "validations": [{"problem_id": p.problem_id, "validation_key": key,
                         "status": "valid" if p.reason is None else "invalid", "reason": p.reason,
                         "limits": limits, "runner_sha": sha, "run_id": run_id, "created_at": now} for p in fresh],
        "agents": agent_rows(settings.agents, warehouse, now)})
    for problem in problems:
        if problem.problem_id in trusted:
            status, reason = trusted[problem.problem_id]
            problem.reason = None if status == "valid" else reason
    usable = [p.problem_id for p in problems if p.reason is None]
    reasons = Counter(p.reason for p in problems if p.reason is not None)
    return {"source": settings.run.source, "loaded": len(problems), "validated_now": len(fresh),
            "usable": len(usable), "rejected": dict(reasons.most_common()), "problem_ids": usable}


# ---- work that travels
@dataclass
class Work:
    """One batch as the flow's process planned it: everything its agent and the sandbox need, so the worker that
    plays it (a thread here, or a Dask worker on another host) never opens the warehouse. The agent's adapter is
    already resolved and its cached LLM responses looked up."""

    stage: str
    run_id: str
    agent: AgentConfig
    agent_id: str
    generator_id: str
    problems: list[Problem] = field(default_factory=list)
    requests: list[EvaluatorRequest] = field(default_factory=list)
    responses: dict[str, list[tuple]] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    equivalent: list[Problem] = field(default_factory=list)
    """generate: the problems the equivalent-pair maker has not tried yet this round."""
    maker_id: str = ""
    kinds: dict[str, str] = field(default_factory=dict)
    """evaluate: the kind of each requested pair (the evaluator never sees it; scoring and relabels do)."""
    problem_of: dict[str, str] = field(default_factory=dict)
    exploration: Exploration | None = None
    """generate, baseline: the pass and what each problem already holds (issue 28)."""
    rows: dict[str, list[dict]] = field(default_factory=dict)
    """Rows the plan made, stored with the batch (the problems skipped as exhausted)."""

    def empty(self) -> bool:
        return not (self.problems or self.requests or self.equivalent)


@dataclass
class Played:
    """What a worker sends back: the rows to store (one write, in the flow's process), its counts and what its
    sandbox time went to (sandbox/tally.py)."""

    stage: str
    rows: dict[str, list[dict]]
    counts: dict
    sandbox: dict
    cpu: dict = field(default_factory=dict)


def _cached_responses(warehouse: Warehouse, agent, items: list) -> dict[str, list[tuple]]:
    if not hasattr(agent, "llm_requests") or not items:
        return {}
    return cached(warehouse, sorted({r.key() for r in agent.llm_requests(items)}))


def _planned_agent(settings: Settings, role: str, warehouse: Warehouse) -> AgentConfig:
    from sinq.agents.backends import resolve_adapter

    return resolve_adapter(getattr(settings.agents, role), role, warehouse)


# ---- generation
def _sample_rows(problem: Problem, group: list[GeneratorSample], generator: str, settings: Settings, run_id: str,
                 now: datetime) -> dict[str, list[dict]]:
    round_, difficulty = settings.run.round, settings.agents.target_difficulty
    batch: dict[str, list[dict]] = {"samples": [], "programs": [], "inputs": []}
    if not group:
        group = [GeneratorSample(problem.problem_id, None, None, "no_sample")]
    for index, sample in enumerate(group):
        pass_id = settings.run.pass_id
        sample_id = content_id("sample", problem.problem_id, generator, round_, difficulty, index,
                               *([pass_id] if pass_id else []))
        program_id = input_id = None
        if sample.program is not None:
            row = program_row(sample.program, now)
            batch["programs"].append(row)
            program_id = row["program_id"]
        if sample.input is not None:
            try:
                literal = normalize_input(sample.input)
            except ValueError:
                literal = sample.input
            row = input_row(literal, now)
            batch["inputs"].append(row)
            input_id = row["input_id"]
        meta = sample.meta
        response_id = f"{meta['request_key']}:{meta['choice']}" if "request_key" in meta else None
        batch["samples"].append({
            "sample_id": sample_id, "problem_id": problem.problem_id, "agent_id": generator,
            "response_id": response_id, "round": round_, "target_difficulty": difficulty, "program_id": program_id,
            "input_id": input_id, "status": "valid" if sample.reason is None else "rejected",
            "reason": sample.reason, "detail": (meta.get("detail") or meta.get("operator")),
            "pass_id": pass_id, "variant_key": meta.get("variant_key"), "run_id": run_id, "created_at": now})
        if sample.verdict is not None and sample.program is not None:
            pair = Pair(sample_id, problem.program, sample.program, problem.entry_point or "", sample.input)
            rows = verdict_rows(pair, sample.verdict, run_id, settings.sandbox.compare, now, settings.sandbox)
            rows["pairs"] = pair_rows(rows, generator, round_, problem.problem_id, sample_id)
            if meta.get("rewrite") is not None:
                for row in rows["pairs"]:
                    row["rewrite"] = json.dumps(meta["rewrite"])
            batch = merge(batch, rows)
    return batch


def plan_generate(settings: Settings, run_id: str, problem_ids: list[str]) -> Work:
    """The batch's problems not yet generated by this generator in this round (the rest is skipped)."""
    from sinq.agents.base import GeneratorRequest

    warehouse = warehouse_for(settings)
    generator = role_id(settings, "generator")
    done = queries.generated_problems(warehouse, problem_ids, generator, settings.run.round,
                                      settings.agents.target_difficulty, settings.run.pass_id)
    agent = _planned_agent(settings, "generator", warehouse)
    planned = plan_pass(settings, warehouse, generator, run_id, [i for i in problem_ids if i not in done],
                        agent.kind == "baseline")
    todo = planned.todo
    problems = queries.problems(warehouse, todo) if todo else []
    responses: dict[str, list[tuple]] = {}
    if agent.kind == "llm" and agent.cache and problems:
        from sinq.agents.llm_agents import LLMGenerator

        difficulty, n = settings.agents.target_difficulty, settings.agents.pairs_per_problem
        responses = _cached_responses(warehouse, LLMGenerator(None, agent),
                                      [GeneratorRequest(p, difficulty, n) for p in problems])
    equivalent, maker = [], ""
    if settings.agents.equivalence.enabled:
        maker = maker_id(settings.agents, warehouse)
        tried = equivalent_queries.tried_problems(warehouse, problem_ids, maker, settings.run.round)
        wanted = [i for i in problem_ids if i not in tried]
        known = {p.problem_id: p for p in problems}
        equivalent = [known[i] for i in wanted if i in known]
        missing = [i for i in wanted if i not in known]
        equivalent += queries.problems(warehouse, missing) if missing else []
    equivalence = settings.agents.equivalence
    if equivalent and equivalence.proposer != "rewrite" and agent.kind == "llm" and agent.cache:
        from sinq.agents.llm_equivalents import LLMEquivalentProposer

        responses |= _cached_responses(warehouse, LLMEquivalentProposer(None, agent, equivalence), equivalent)
    return Work("generate", run_id, agent, generator, generator, problems=problems, responses=responses,
                counts={"problems": len(problem_ids), "skipped": len(problem_ids) - len(todo),
                        "exhausted": planned.exhausted},
                equivalent=equivalent, maker_id=maker, exploration=planned.exploration, rows=planned.rows)


def play_generate(settings: Settings, work: Work) -> Played:
    """Samples for the planned problems, settled in the sandbox, and equivalent pairs for those the maker has not
    tried, as rows; no warehouse (any host can run this)."""
    from sinq.agents.backends import make_generator

    counts = dict(work.counts)
    if work.empty():
        return Played("generate", dict(work.rows), counts, {})
    carried = CarriedResponses(work.responses)
    pool, lock = shared_pool(settings.sandbox)
    groups: list[list[GeneratorSample]] = []
    with holding(lock), no_lost_executions(pool, "generate"), charged_to("search"):
        before = tally.snapshot()
        if work.problems:
            agent = make_generator(work.agent, settings.agents.baseline, pool, run_id=work.run_id,
                                   responses=carried)
            explore_with(agent, work.exploration)
            groups = play.generate(agent, work.problems, settings.agents.target_difficulty,
                                   settings.agents.pairs_per_problem, pool)
            if _disguised(settings, work.agent):
                from sinq.agents.disguise import disguise

                counts["disguise"] = dict(sorted(disguise(work.problems, groups, pool, settings.agents.equivalence,
                                                          work.agent_id).items()))
        made = _make_equivalents(settings, work, pool, carried) if work.equivalent else None
        sandbox = tally.since(before)
    raise_for_sandbox([s.verdict for g in groups for s in g if s.verdict is not None], "sample checks")
    search = _search_counts(groups)
    if search:
        counts["search"] = search
    now = datetime.now(UTC)
    rows = merge(carried.rows, work.rows, *(_sample_rows(p, g, work.agent_id, settings, work.run_id, now)
                                 for p, g in zip(work.problems, groups, strict=True)))
    if made is not None:
        counts["equivalence"] = _equivalence_counts(made)
        rows = merge(rows, _equivalent_rows(made, work, settings, now))
    return Played("generate", rows, counts, sandbox)


def _disguised(settings: Settings, agent: AgentConfig) -> bool:
    """Whether this batch's verified variants go through the equivalent half's rewriter (issue 27): with both halves
    on, a share above 0, and for an llm generator only where ``disguise_llm`` asks."""
    equivalence = settings.agents.equivalence
    return equivalence.enabled and equivalence.disguise_share > 0 and (agent.kind != "llm"
                                                                       or equivalence.disguise_llm)


def _make_equivalents(settings: Settings, work: Work, pool, carried: CarriedResponses):
    """The maker with the proposer the config asks for (the rewriter, the generator's model, or both); an LLM's
    fresh responses reach ``carried.rows`` and are stored with the batch."""
    from sinq.agents.equivalents import EquivalentMaker
    from sinq.agents.llm_equivalents import proposer_for, rejected

    agents = settings.agents
    maker = EquivalentMaker(pool, agents.equivalence, agents.baseline)
    maker.proposer = proposer_for(maker, work.agent, carried, work.run_id)
    made = maker.make(work.equivalent)
    made.stats.update({f"llm_rejected_{k}": v for k, v in rejected(maker.proposer).items()})
    return made


def _equivalence_counts(made) -> dict:
    stats = made.stats
    return {"problems": stats["problems"], "candidates": stats["candidates"], "fuzzed": stats["fuzzed"],
            "kept": len(made.pairs), "fuzz_executions": stats["fuzz_executions"],
            "slow_inputs_skipped": stats["slow_inputs_skipped"], "quick_runs": stats["quick_runs"],
            "quick_suspects": stats["quick_suspects"],
            "llm_rejected": {k.removeprefix("llm_rejected_"): v for k, v in stats.items()
                             if k.startswith("llm_rejected_")},
            "dropped": dict(Counter(d.reason for d in made.dropped).most_common()),
            "blamed": dict(sorted(made.blamed.items())), "tried_by": dict(sorted(made.fuzzed.items()))}


def _equivalent_rows(made, work: Work, settings: Settings, now: datetime) -> dict[str, list[dict]]:
    """Each surviving candidate's pair, evidence and every verdict it was fuzzed on; one attempt row per problem."""
    round_ = settings.run.round
    equivalence = settings.agents.equivalence
    fuzz = {"budget": equivalence.fuzz_budget, "steps": equivalence.steps, "verified": equivalence.verified_inputs}
    quick = equivalence.verified_inputs > 0
    batch: dict[str, list[dict]] = {"equivalence_attempts": [
        attempt_row(problem_id, work.maker_id, round_, counts, work.run_id, now)
        for problem_id, counts in made.attempts.items()]}
    for pair in made.pairs:
        batch = merge(batch, equivalent_pair_rows(
            pair.tried, pair.evidence, pair.transformations, work.maker_id, round_, pair.problem_id, None,
            work.run_id, now, settings.sandbox, {**fuzz, "seed": pair.seed, "inputs_met": pair.fuzzed,
                                                 "quick_runs_per_side": pair.fuzzed if quick else 0}))
    return batch


def _search_counts(groups: list[list[GeneratorSample]]) -> dict[str, int]:
    total: Counter = Counter()
    for group in groups:
        for sample in group:
            total.update(sample.meta.get("search") or {})
    return dict(sorted(total.items()))


def store_played(settings: Settings, played: Played) -> dict:
    """Store a batch's rows in one write from the flow's process (the single writer; generated pairs are marked by
    ``tasks.hygiene`` inside that write) and return its counts."""
    counts = {**played.counts, "sandbox": played.sandbox}
    rows = played.rows
    if played.stage == "generate":
        counts.update(samples=0, valid=0, verified_pairs=0, duplicates=0, reasons={})
        if rows:
            warehouse_for(settings).store(rows, prepare=preparer(settings.quality))
        samples = rows.get("samples", [])
        pairs = [p for p in rows.get("pairs", []) if p.get("pair_kind") != "equivalent"]
        equivalent = [p for p in rows.get("pairs", []) if p.get("pair_kind") == "equivalent"]
        counts.update(samples=len(samples), valid=sum(s["status"] == "valid" for s in samples),
                      verified_pairs=sum(p["duplicate_of"] is None for p in pairs),
                      duplicates=sum(p["duplicate_of"] is not None for p in pairs),
                      reasons=dict(Counter(s["reason"] for s in samples if s["reason"]).most_common()))
        if "equivalence" in counts:
            counts["equivalence"]["stored"] = sum(p["duplicate_of"] is None for p in equivalent)
    elif rows:
        prepare = preparer(settings.quality) if rows.get("pairs") else None
        warehouse_for(settings).store(rows, prepare=prepare)
    return counts


def generate_batch(settings: Settings, run_id: str, problem_ids: list[str]) -> dict:
    """Plan, play and store one generate batch in this process (what the flow does across processes)."""
    return store_played(settings, play_generate(settings, plan_generate(settings, run_id, problem_ids)))


# ---- evaluation
def plan_evaluate(settings: Settings, run_id: str, problem_ids: list[str]) -> Work:
    """This round's unlabelled pairs of the batch's problems, and (``[agents.equivalence] evaluator_share``) the
    equivalent pairs picked to be shown beside them, as the evaluator's requests in one shuffled order."""
    warehouse = warehouse_for(settings)
    generator = role_id(settings, "generator")
    evaluator = role_id(settings, "evaluator")
    pending = queries.unlabelled_pairs(warehouse, problem_ids, generator, settings.run.round, evaluator)
    kinds = {p["pair_id"]: "inequivalent" for p in pending}
    problem_of: dict[str, str] = {}
    maker = ""
    equivalence = settings.agents.equivalence
    if equivalence.enabled and equivalence.evaluator_share > 0:
        maker = maker_id(settings.agents, warehouse)
        shown = _equivalent_shown(warehouse, problem_ids, maker, generator, evaluator, settings)
        pending += shown
        kinds |= {p["pair_id"]: "equivalent" for p in shown}
        problem_of = {p["pair_id"]: p["problem_id"] for p in shown}
    random.Random(content_id("evaluation-order", settings.run.round, sorted(kinds))).shuffle(pending)
    requests = [EvaluatorRequest(p["pair_id"], p["original"], p["variant"], p["entry_point"], settings.agents.answers,
                                 json.loads(p["seed_inputs"] or "[]")) for p in pending]
    agent = _planned_agent(settings, "evaluator", warehouse)
    responses: dict[str, list[tuple]] = {}
    if agent.kind == "llm" and agent.cache and requests:
        from sinq.agents.llm_agents import LLMEvaluator

        responses = _cached_responses(warehouse, LLMEvaluator(None, agent), requests)
    return Work("evaluate", run_id, agent, evaluator, generator, requests=requests, responses=responses,
                maker_id=maker, kinds=kinds, problem_of=problem_of)


def _equivalent_shown(warehouse: Warehouse, problem_ids: list[str], maker: str, generator: str, evaluator: str,
                      settings: Settings) -> list[dict]:
    """The batch's equivalent pairs the evaluator is yet to answer among the first ``quota`` (pair-id order, i.e.
    content-hash order): share s of what is shown means s / (1 - s) equivalent pairs per inequivalent one, counted
    over the round's pairs of the batch so a resumed run shows the same ones."""
    share = settings.agents.equivalence.evaluator_share
    round_ = settings.run.round
    inequivalent = equivalent_queries.inequivalent_count(warehouse, problem_ids, generator, round_)
    quota = int(inequivalent * share / (1 - share) + 0.5)
    chosen = equivalent_queries.for_evaluation(warehouse, problem_ids, maker, round_, evaluator)[:quota]
    return [p for p in chosen if not p.pop("answered")]


def play_evaluate(settings: Settings, work: Work) -> Played:
    """The evaluator's answers for the planned pairs, each claim checked in the sandbox, and the difficulty
    labels of the inequivalent pairs, as rows; an equivalent pair a "No" refuted (its input diverges) is relabelled
    inequivalent with that input. No warehouse."""
    from sinq.agents.backends import make_evaluator

    counts = {"evaluated_pairs": 0, "answers": 0, "successful_answers": 0, "difficulty": {}}
    requests, evaluator, round_, run_id = work.requests, work.agent_id, settings.run.round, work.run_id
    if not requests:
        return Played("evaluate", {}, counts, {})
    carried = CarriedResponses(work.responses)
    pool, lock = shared_pool(settings.sandbox)
    with holding(lock), no_lost_executions(pool, "evaluate"), charged_to("evaluation"):
        before = tally.snapshot()
        agent = make_evaluator(work.agent, settings.agents.baseline, pool, run_id=run_id, responses=carried)
        played = play.evaluate(agent, requests, pool, evaluator)
        sandbox = tally.since(before)
    raise_for_sandbox(list(played.verdicts.values()), "answer checks")
    now = datetime.now(UTC)
    batch: dict[str, list[dict]] = {"evaluator_answers": [], "difficulty_labels": []}
    checks: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for key, pair in played.checks.items():
        checks[key] = verdict_rows(pair, played.verdicts[key], run_id, settings.sandbox.compare, now,
                                   settings.sandbox)
        batch = merge(batch, checks[key])
    histogram: Counter = Counter()
    outcomes: Counter = Counter()
    for request, group, literals, successes, difficulty in zip(requests, played.answers, played.literals,
                                                               played.successes, played.difficulties, strict=True):
        kind = work.kinds.get(request.pair_id, "inequivalent")
        refuted = None
        for index, (answer, literal, diverged) in enumerate(zip(group, literals, successes, strict=True)):
            answer_id = content_id("answer", request.pair_id, evaluator, round_, index,
                                   *([settings.run.pass_id] if settings.run.pass_id else []))
            outcome = score(kind, answer.equivalent if not diverged else False, diverged)
            outcomes[f"{kind}:{outcome.outcome}"] += 1
            if outcome.refutes and refuted is None:
                refuted = (answer_id, literal)
            batch["evaluator_answers"].append({
                "answer_id": answer_id,
                "pair_id": request.pair_id, "agent_id": evaluator, "response_id": None, "answer_index": index,
                "input_id": content_id("input", literal) if literal else None,
                "claimed_equivalent": answer.equivalent, "weight": literals.count(literal) if literal else 0,
                "verdict_id": checks[(request.pair_id, literal)]["verdicts"][0]["verdict_id"] if literal else None,
                "counted": True, "diverged": diverged, "reason": answer.reason, "round": round_, "run_id": run_id,
                "created_at": now})
        if kind == "equivalent":
            if refuted is not None:
                answer_id, literal = refuted
                batch = merge(batch, relabel_rows(request.pair_id, checks[(request.pair_id, literal)], answer_id,
                                                  work.maker_id, round_, work.problem_of.get(request.pair_id), None,
                                                  run_id, now))
            continue
        histogram[difficulty] += 1
        batch["difficulty_labels"].append({
            "pair_id": request.pair_id, "evaluator_agent_id": evaluator, "round": round_, "n_answers": len(successes),
            "n_failures": successes.count(False), "difficulty": difficulty, "run_id": run_id, "created_at": now})
    answers_flat = [a for a in batch["evaluator_answers"] if work.kinds.get(a["pair_id"]) != "equivalent"]
    counts.update(evaluated_pairs=len(batch["difficulty_labels"]), answers=len(answers_flat),
                  successful_answers=sum(a["diverged"] for a in answers_flat),
                  difficulty={str(k): v for k, v in sorted(histogram.items())})
    shown = sum(kind == "equivalent" for kind in work.kinds.values())
    if shown:
        counts["equivalent"] = {"pairs": shown, "outcomes": dict(sorted(outcomes.items())),
                                "relabelled": len(batch.get("pair_relabels", []))}
    return Played("evaluate", merge(carried.rows, batch), counts, sandbox)


def evaluate_batch(settings: Settings, run_id: str, problem_ids: list[str]) -> dict:
    """Plan, play and store one evaluate batch in this process."""
    return store_played(settings, play_evaluate(settings, plan_evaluate(settings, run_id, problem_ids)))


# ---- summary and snapshot
def run_summary(settings: Settings, run_id: str) -> dict:
    """What this run added (and the round's totals), read back from the warehouse: the figures users see.
    ``verified_pairs`` is what the public view holds for the run: no duplicates of earlier pairs, nothing an audit
    could not reproduce (``stored_pairs`` has them all, ``duplicates`` counts
    them by kind); ``flagged`` counts the degenerate flags of the non-duplicates; ``verification_rate`` is the share
    of this run's generator samples that became a verified inequivalent pair (a duplicate still verified; the
    equivalent pairs, made by the rewriter and not from samples, are counted apart), so it is at most 1. The flow
    adds what its batches reported (search counts, sandbox time, CPU)."""
    generator = role_id(settings, "generator")
    evaluator = role_id(settings, "evaluator")
    round_ = settings.run.round
    warehouse = warehouse_for(settings)
    f = queries.run_figures(warehouse, run_id, generator, evaluator, round_)
    samples, stored = f["samples"], f["stored"]
    e = equivalent_queries.run_figures(warehouse, run_id)
    on_equivalent, on_inequivalent = e["answers"], e["inequivalent"]
    successes = f["successes"] - on_equivalent["refuting"]
    return {
        "run_id": run_id, "samples": samples, "valid_samples": f["valid"], "verified_pairs": f["pairs"],
        "stored_pairs": stored, "verification_rate": round(f["verified_samples"] / samples, 4) if samples else 0.0,
        "duplicates": {"exact": f["exact"], "near": f["near"]}, "flagged": f["flagged"],
        "evaluated_pairs": f["labelled"], "answers": on_inequivalent["answers"],
        "evaluator_success_rate": _rate(successes, on_inequivalent["answers"]),
        "false_alarm_rate": _rate(on_equivalent["false_alarms"], on_equivalent["answers"]),
        "miss_rate": _rate(on_inequivalent["misses"], on_inequivalent["answers"]),
        "equivalent_pairs": e["made"]["standing"],
        "equivalence": {"pairs": e["made"]["stored"], "standing": e["made"]["standing"],
                        "problems_with_pairs": e["made"]["problems"], **e["tried"], "dropped": e["dropped"],
                        "pairs_per_problem": _rate(e["made"]["stored"], e["tried"]["problems_tried"]),
                        "evaluated_pairs": on_equivalent["pairs"], "answers": on_equivalent["answers"],
                        "said_yes": on_equivalent["said_yes"], "false_alarms": on_equivalent["false_alarms"],
                        "accuracy": _rate(on_equivalent["said_yes"] + on_equivalent["refuting"],
                                          on_equivalent["answers"]),
                        "relabelled": e["relabelled"]},
        "difficulty_histogram": {str(k): v for k, v in f["histogram"].items()},
        "top_rejection_reasons": [[r, c] for r, c in f["reasons"]],
        "round": round_, "generator": generator, "evaluator": evaluator,
        "round_verified_pairs": f["total_pairs"], "round_evaluated_pairs": f["total_labelled"],
        "sources": f["sources"],
    }


def _rate(k: int, n: int) -> float | None:
    return round(k / n, 4) if n else None


def export_snapshot(settings: Settings, run_id: str) -> dict | None:
    """This run's verified pairs as Parquet + dataset card under export_dir/run_id (None when exports are off)."""
    from sinq.warehouse.export import export

    if settings.run.export_dir is None:
        return None
    target = settings.run.export_dir / run_id
    result = export(warehouse_for(settings), target, "parquet", run_id)
    return {"path": str(target), **{k: v for k, v in result.items() if isinstance(v, (int, str))}}
