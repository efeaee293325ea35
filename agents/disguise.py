"""Inequivalent variants dressed like equivalent ones (issue 27, item 1).

An equivalent pair is ``rewrite(original)``; a plain inequivalent pair is a one-token mutant. Left so, a classifier
that reads only the surface (how much changed, what new names appeared) tells the kinds apart without knowing any
semantics. So a verified variant goes through the same semantics-preserving rewriter (``game/equivalence.py``
``rewrite``, the equivalent half's steps and transformations) in ``[agents.equivalence] disguise_share`` of the
cases: inequivalent = rewrite(mutant). The rewriter preserves the mutant's behaviour, but a rewrite is never
believed: the verdict is settled again on the *final* variant, the sample's own diverging input through the same
``verify_many`` the samples are settled by (same stability rules), one extra verdict per verified sample. A rewrite
that no longer diverges (or that the rewriter refuses) leaves the plain mutant, counted. The rewrite's seed comes
from (problem, generator, sample index, the variant), so a resumed run stores the same rows.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from sinq.agents.base import GeneratorSample
from sinq.agents.config import EquivalenceConfig
from sinq.agents.equivalents import arg_types
from sinq.game.equivalence import rewrite
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.tally import charged_to
from sinq.sandbox.verify import Pair, raise_for_sandbox, verify_many
from sinq.sources.problem import Problem


def disguise_seed(problem_id: str, generator: str, variant: str, index: int, random_seed: int = 0) -> int:
    """The rewrite's seed for one sample: content (problem, generator, sample index, the variant itself), so that a
    rerun or a resumed run rewrites it the same way. Not the round: a deterministic generator's next round finds
    the same mutant, which must stay an exact duplicate (tasks.hygiene), not come back in other clothes."""
    key = f"disguise\x00{problem_id}\x00{generator}\x00{variant}\x00{index}\x00{random_seed}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def disguise(problems: list[Problem], groups: list[list[GeneratorSample]], pool: WorkerPool,
             config: EquivalenceConfig, generator: str) -> Counter:
    """Rewrite the verified samples picked by the share, in place: a sample whose rewritten variant still diverges
    on its input gets that variant and its fresh verdict; every sample it looked at gets ``meta["rewrite"]``
    (transformations, their mix, seed; ``kept_plain`` with the reason when the plain mutant stays). Returns the
    counts (``eligible``, ``rewritten``, ``plain_by_share``, ``plain_refused``, ``plain_no_longer_diverges``)."""
    counts: Counter = Counter()
    plan: list[tuple[GeneratorSample, list[str], dict, int, Pair]] = []
    for problem, group in zip(problems, groups, strict=True):
        if problem.entry_point is None:
            continue
        types = None
        for index, sample in enumerate(group):
            if sample.program is None or sample.reason is not None or sample.verdict is None \
                    or sample.verdict.verdict != "diverges":
                continue
            counts["eligible"] += 1
            seed = disguise_seed(problem.problem_id, generator, sample.program, index, config.random_seed)
            if random.Random(f"share:{seed}").random() >= config.disguise_share:
                counts["plain_by_share"] += 1
                continue
            types = types if types is not None else arg_types(problem.seed_inputs)
            made = rewrite(sample.program, problem.entry_point, transformations=config.transformations,
                           steps=config.steps, seed=seed, arg_types=types)
            if not made.changed:
                counts["plain_refused"] += 1
                sample.meta["rewrite"] = _record([], seed, "refused")
                continue
            plan.append((sample, made.applied, made.mix, seed,
                         Pair(str(len(plan)), problem.program, made.code, problem.entry_point, sample.input)))
    if not plan:
        return counts
    with charged_to("verdicts"):
        verdicts = verify_many([pair for *_, pair in plan], pool)
    raise_for_sandbox(verdicts, "disguise checks")
    for (sample, applied, mixed, seed, pair), verdict in zip(plan, verdicts, strict=True):
        if verdict.verdict == "diverges":
            sample.program, sample.verdict = pair.variant, verdict
            sample.meta["rewrite"] = {"transformations": applied, "mix": mixed, "seed": seed, "of": "mutant"}
            counts["rewritten"] += 1
        else:
            counts["plain_no_longer_diverges"] += 1
            sample.meta["rewrite"] = _record(applied, seed, f"no_longer_diverges:{verdict.verdict}:{verdict.reason}")
    return counts


def _record(applied: list[str], seed: int, reason: str) -> dict:
    """What a pair that kept its plain mutant stores: the rewrite tried and why it was not kept."""
    return {"transformations": [], "mix": {}, "seed": seed, "of": "mutant", "kept_plain": reason, "tried": applied}
