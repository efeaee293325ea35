"""One round of the game as plain functions: agents propose, the sandbox settles, this module composes.

The nightly stages (tasks/stages.py, which add the warehouse), `sinq agents baseline` (which does not) and the
``game`` evaluation suite (evals/game.py) all play through here, so there is one generate → settle → evaluate →
settle → label path. Nothing here stores anything or talks to Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sinq.agents.base import EvaluatorAnswer, EvaluatorRequest, GeneratorRequest, GeneratorSample
from sinq.game.difficulty import label
from sinq.game.parsing import normalize_input
from sinq.sandbox.outcome import Verdict
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.tally import charged_to
from sinq.sandbox.verify import Pair, verify_many
from sinq.sources.problem import Problem


def settle_samples(problems: list[Problem], groups: list[list[GeneratorSample]], pool: WorkerPool) -> None:
    """Settle every claim the generator made and did not settle itself: run both programs on the claimed input. A
    claim that does not diverge keeps its verdict and gets ``verdict:reason`` as its rejection reason. (The baseline
    generator settles its own claims through the same ``verify_many``, because it picks its n pairs among the
    claims that hold; those are not run twice.)"""
    claims = [(problem, sample) for problem, group in zip(problems, groups, strict=True) for sample in group
              if sample.reason is None and sample.verdict is None and sample.program is not None]
    pairs = [Pair(str(i), p.program, s.program or "", p.entry_point or "", s.input)
             for i, (p, s) in enumerate(claims)]
    with charged_to("verdicts"):
        verdicts = verify_many(pairs, pool) if pairs else []
    for (_, sample), verdict in zip(claims, verdicts, strict=True):
        sample.verdict = verdict
        if verdict.verdict != "diverges":
            sample.reason = f"{verdict.verdict}:{verdict.reason}"


def generate(generator, problems: list[Problem], difficulty: int, n: int,
             pool: WorkerPool) -> list[list[GeneratorSample]]:
    """The generator's samples for each problem, every claim settled."""
    groups = generator.generate([GeneratorRequest(p, difficulty, n) for p in problems])
    settle_samples(problems, groups, pool)
    return groups


@dataclass
class Evaluation:
    """The evaluator's answers to each request, the verdict of every distinct (pair, input) it claimed, and per
    request whether each answer showed a divergence (its successes) and the difficulty label they give."""

    requests: list[EvaluatorRequest]
    answers: list[list[EvaluatorAnswer]]
    checks: dict[tuple[str, str], Pair] = field(default_factory=dict)
    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    literals: list[list[str | None]] = field(default_factory=list)
    successes: list[list[bool]] = field(default_factory=list)
    difficulties: list[int] = field(default_factory=list)


def evaluate(evaluator, requests: list[EvaluatorRequest], pool: WorkerPool, evaluator_name: str) -> Evaluation:
    """The evaluator answers; each distinct claimed input is settled once; answers are scored and labelled."""
    answers = evaluator.evaluate(requests)
    result = Evaluation(requests, answers)
    for request, group in zip(requests, answers, strict=True):
        for answer in group:
            if answer.input is not None:
                literal = normalize_input(answer.input)
                result.checks.setdefault((request.pair_id, literal), Pair(
                    f"{request.pair_id}:{literal}", request.original, request.variant, request.entry_point, literal))
    if result.checks:
        with charged_to("verdicts"):
            verdicts = verify_many(list(result.checks.values()), pool)
        result.verdicts = dict(zip(result.checks, verdicts, strict=True))
    for request, group in zip(requests, answers, strict=True):
        literals = [normalize_input(a.input) if a.input is not None else None for a in group]
        successes = [bool(literal) and result.verdicts[(request.pair_id, literal)].verdict == "diverges"
                     for literal in literals]
        result.literals.append(literals)
        result.successes.append(successes)
        result.difficulties.append(label(successes, evaluator_name).difficulty)
    return result
