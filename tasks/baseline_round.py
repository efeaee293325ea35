"""One baseline round without Prefect or a warehouse: the mutation generator and the fuzzing evaluator play through
the same generate → settle → evaluate → settle → label path as the nightly stages (agents/play.py). It measures the
baselines' yield and is the reference any LLM agent is compared against (`sinq agents baseline`)."""

from __future__ import annotations

from collections import Counter

from sinq.agents import play
from sinq.agents.base import EvaluatorRequest
from sinq.agents.baselines import FuzzEvaluator, MutationGenerator
from sinq.agents.config import BaselineConfig
from sinq.sandbox.pool import WorkerPool
from sinq.sources.problem import Problem


def baseline_round(problems: list[Problem], pool: WorkerPool, n: int = 1, difficulty: int = 5,
                   answers: int = 4, config: BaselineConfig | None = None) -> dict:
    usable = [p for p in problems if p.reason is None]
    generator = MutationGenerator(pool, config)
    evaluator = FuzzEvaluator(pool, config)
    groups = play.generate(generator, usable, difficulty, n, pool)
    pairs = [(problem, sample) for problem, group in zip(usable, groups, strict=True)
             for sample in group if sample.reason is None]
    requests = [EvaluatorRequest(str(i), p.program, s.program or "", p.entry_point or "", answers, p.seed_inputs)
                for i, (p, s) in enumerate(pairs)]
    labels = play.evaluate(evaluator, requests, pool, evaluator.name).difficulties if requests else []
    with_pair = {p.problem_id for p, _ in pairs}
    rejected = Counter(s.reason for group in groups for s in group if s.reason is not None)
    return {
        "problems": len(usable),
        "with_pair": len(with_pair),
        "yield": round(len(with_pair) / len(usable), 4) if usable else 0.0,
        "verified_pairs": len(pairs),
        "rejected_samples": dict(rejected.most_common()),
        "evaluated_pairs": len(labels),
        "difficulty_histogram": {str(d): labels.count(d) for d in range(11) if labels.count(d)},
    }
