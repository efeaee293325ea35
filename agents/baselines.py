"""Model-free agents that play anywhere: a mutation generator and a fuzzing evaluator. Every execution goes
through the sandbox in batches; a mutant for which no input shows a difference within the budget is discarded
and said so (it may be equivalent), never passed off as a pair."""

from __future__ import annotations

from sinq.agents.base import EvaluatorAnswer, EvaluatorRequest, GeneratorRequest, GeneratorSample
from sinq.agents.config import BaselineConfig
from sinq.agents.mutation import DIFFICULTY_ORDER, mutants
from sinq.agents.search import candidates
from sinq.sandbox.config import Limits
from sinq.sandbox.pool import Job, WorkerPool
from sinq.sandbox.verify import Pair, verify_many


def _search_limits(backend: WorkerPool, config: BaselineConfig) -> Limits:
    limits = backend.config.limits
    return limits.model_copy(update={"timeout_s": min(limits.timeout_s, config.search_timeout_s)})


def first_differences(backend: WorkerPool, config: BaselineConfig,
                      trials: list[tuple[str, str, str, list[str]]]) -> list[list[str]]:
    """For each (original, variant, entry_point, inputs): the inputs on which one quick run of each side differs,
    in order. One batch for everything; the original's runs are shared between its variants."""
    limits = _search_limits(backend, config)
    jobs: list[Job] = []
    index: dict[tuple[str, str], int] = {}

    def job_for(program: str, entry: str, literal: str) -> int:
        key = (program, literal)
        if key not in index:
            index[key] = len(jobs)
            jobs.append(Job(program=program, entry_point=entry, input=literal, limits=limits))
        return index[key]

    plan = []
    for original, variant, entry, inputs in trials:
        plan.append([(literal, job_for(original, entry, literal), job_for(variant, entry, literal))
                     for literal in inputs])
    outcomes = backend.run(jobs)
    mode = backend.config.compare
    found: list[list[str]] = []
    for rows in plan:
        halting, hanging = [], []
        for literal, a, b in rows:
            left, right = outcomes[a], outcomes[b]
            if "invalid" in (left.kind, right.kind) or (left.kind == right.kind == "timeout"):
                continue
            if not left.same_as(right, mode):
                (halting if left.halted and right.halted else hanging).append(literal)
        found.append(halting + hanging)
    return found


class MutationGenerator:
    """Mutants of the entry point (12 operator kinds), each paired with a diverging input found by searching
    around the problem's seed inputs, then settled by the full verdict rules."""

    name = "baseline-mutation"

    def __init__(self, backend: WorkerPool, config: BaselineConfig | None = None) -> None:
        self.backend = backend
        self.config = config or BaselineConfig()

    def _pick(self, problem, difficulty: int) -> list[tuple[str, str]]:
        pool = list(mutants(problem.code, problem.entry_point))
        start = round(difficulty / 10 * (len(DIFFICULTY_ORDER) - 1))
        rank = {name: abs(i - start) for i, name in enumerate(DIFFICULTY_ORDER)}
        pool.sort(key=lambda item: rank[item[0]])
        return pool[: self.config.max_mutants]

    def generate(self, requests: list[GeneratorRequest]) -> list[list[GeneratorSample]]:
        config = self.config
        chosen = [self._pick(r.problem, r.target_difficulty) for r in requests]
        trials, owners = [], []
        for r, (request, picks) in enumerate(zip(requests, chosen, strict=True)):
            inputs = list(candidates(request.problem.seed_inputs, config.search_budget, config.seed))
            for operator, source in picks:
                trials.append((request.problem.program, source, request.problem.entry_point, inputs))
                owners.append((r, operator))
        hits = first_differences(self.backend, config, trials)
        pairs, claims = [], []
        results: list[list[GeneratorSample]] = [[] for _ in requests]
        wanted = [r.n + 1 for r in requests]
        for (r, operator), trial, found in zip(owners, trials, hits, strict=True):
            problem = requests[r].problem
            if not found:
                results[r].append(GeneratorSample(problem.problem_id, trial[1], None, "no_diverging_input_found",
                                                  {"operator": operator}))
                continue
            if wanted[r] == 0:
                continue
            wanted[r] -= 1
            pairs.append(Pair(f"{r}:{len(pairs)}", problem.program, trial[1], problem.entry_point, found[0]))
            claims.append((r, operator, trial[1], found[0]))
        for (r, operator, program, literal), verdict in zip(claims, verify_many(pairs, self.backend), strict=True):
            problem = requests[r].problem
            reason = None if verdict.verdict == "diverges" else f"{verdict.verdict}:{verdict.reason}"
            results[r].append(GeneratorSample(problem.problem_id, program, literal, reason,
                                              {"operator": operator}, verdict))
        for r, request in enumerate(requests):
            good = [s for s in results[r] if s.reason is None][: request.n]
            rejected = [s for s in results[r] if s.reason is not None]
            results[r] = good + rejected
        return results


class FuzzEvaluator:
    """Bob without a model: searches around the seed inputs with ``n x 4`` candidates and answers with up to n
    inputs on which a quick run differs; missing answers are non-answers (failures), as for an LLM."""

    name = "baseline-fuzz"

    def __init__(self, backend: WorkerPool, config: BaselineConfig | None = None) -> None:
        self.backend = backend
        self.config = config or BaselineConfig()

    def evaluate(self, requests: list[EvaluatorRequest]) -> list[list[EvaluatorAnswer]]:
        trials = [(r.original, r.variant, r.entry_point,
                   list(candidates(r.seed_inputs, r.n * 4, self.config.seed + 1))) for r in requests]
        hits = first_differences(self.backend, self.config, trials)
        answers = []
        for request, found in zip(requests, hits, strict=True):
            chosen = [EvaluatorAnswer(request.pair_id, literal, equivalent=False) for literal in found[: request.n]]
            chosen += [EvaluatorAnswer(request.pair_id, None, reason="no_input_found")
                       for _ in range(request.n - len(chosen))]
            answers.append(chosen)
        return answers
