"""One baseline round without Prefect: generate with mutations, settle, evaluate with the fuzzer, label difficulty.
It measures the baselines' yield and is the reference any LLM agent is compared against."""

from __future__ import annotations

from collections import Counter

from sinq.agents.base import EvaluatorRequest, GeneratorRequest
from sinq.agents.baselines import FuzzEvaluator, MutationGenerator
from sinq.agents.config import BaselineConfig
from sinq.game.difficulty import label
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.verify import Pair, verify_many
from sinq.sources.problem import Problem


def baseline_round(problems: list[Problem], backend: WorkerPool, n: int = 1, difficulty: int = 5,
                   answers: int = 4, config: BaselineConfig | None = None) -> dict:
    usable = [p for p in problems if p.reason is None]
    generator = MutationGenerator(backend, config)
    evaluator = FuzzEvaluator(backend, config)
    samples = generator.generate([GeneratorRequest(p, difficulty, n) for p in usable])
    pairs = [(problem, sample) for problem, group in zip(usable, samples, strict=True)
             for sample in group if sample.reason is None]
    requests = [EvaluatorRequest(str(i), p.program, s.program or "", p.entry_point or "", answers, p.seed_inputs)
                for i, (p, s) in enumerate(pairs)]
    proposed = evaluator.evaluate(requests)
    checks = [Pair(f"{i}:{j}", p.program, s.program or "", p.entry_point or "", a.input)
              for i, ((p, s), group) in enumerate(zip(pairs, proposed, strict=True))
              for j, a in enumerate(group) if a.input is not None]
    settled = {v.id: v.verdict == "diverges" for v in verify_many(checks, backend)} if checks else {}
    labels = []
    for i, group in enumerate(proposed):
        successes = [settled.get(f"{i}:{j}", False) for j in range(len(group))]
        labels.append(label(successes, evaluator.name).difficulty)
    with_pair = {p.problem_id for p, _ in pairs}
    rejected = Counter(s.reason for group in samples for s in group if s.reason is not None)
    return {
        "problems": len(usable),
        "with_pair": len(with_pair),
        "yield": round(len(with_pair) / len(usable), 4) if usable else 0.0,
        "verified_pairs": len(pairs),
        "rejected_samples": dict(rejected.most_common()),
        "evaluated_pairs": len(labels),
        "difficulty_histogram": {str(d): labels.count(d) for d in range(11) if labels.count(d)},
    }
