"""The figures behind two data-hygiene thresholds, measured on HumanEval and its mutants (`sinq train
bench-thresholds`), so they can be reproduced and re-measured when a rule changes.

- Near duplicates (``[quality.dedup] near_threshold``): every mutant of one original is within a few tokens of every
  other, so MinHash similarity alone calls most *different-site* mutant pairs near duplicates; the place check
  (both edits touch the same place of the original) must bring that to ~0 while still catching a one-token change
  of an earlier variant (a second-order mutant of it).
- Decontamination (``[training.decontamination] max_ngram_overlap``): the n-gram share between training material
  (train-split programs and their mutants) and the held-out programs, per threshold: how much of the training
  material a threshold would remove (different problems: false alarms) and how many mutants of held-out programs
  it catches (true contamination).
"""

from __future__ import annotations

import itertools
import time

from sinq.agents.mutation import mutants
from sinq.game.similarity import code_tokens, fingerprint, near_duplicate, spans_overlap
from sinq.sources.config import SplitConfig
from sinq.sources.loaders import load
from sinq.sources.splits import split_of
from sinq.training.config import DecontaminationConfig
from sinq.training.decontam import EvalIndex, make_item


def near_duplicate_figures(problems: list, threshold: float, shingle: int, num_perm: int,
                           max_mutants: int | None) -> dict:
    different_site = flagged_alone = flagged = 0
    second_order = caught = 0
    total_mutants = 0
    for problem in problems:
        base = code_tokens(problem.code)
        sources = [m for _, m in itertools.islice(mutants(problem.code, problem.entry_point), max_mutants)]
        total_mutants += len(sources)
        prints = [fingerprint(base, m, shingle, num_perm) for m in sources]
        for a, b in itertools.combinations(prints, 2):
            if spans_overlap(a.spans, b.spans):
                continue
            different_site += 1
            flagged_alone += a.signature.jaccard(b.signature) >= threshold
            flagged += near_duplicate(a, b, threshold) is not None
        for source, first in zip(sources, prints, strict=True):
            again = next((m for _, m in mutants(source, problem.entry_point) if m != problem.code), None)
            if again is None:
                continue
            second_order += 1
            caught += near_duplicate(first, fingerprint(base, again, shingle, num_perm), threshold) is not None
    return {
        "mutants": total_mutants, "different_site_pairs": different_site,
        "different_site_similar_share": round(flagged_alone / different_site, 4) if different_site else None,
        "different_site_flagged_share": round(flagged / different_site, 4) if different_site else None,
        "one_token_changes": second_order,
        "one_token_changes_caught_share": round(caught / second_order, 4) if second_order else None,
    }


def decontamination_figures(problems: list, thresholds: list[float], ngram: int, split: SplitConfig,
                            max_mutants: int | None) -> dict:
    held = [p for p in problems if split_of(p.problem_id, split, p.source) == "held_out"]
    train = [p for p in problems if p not in held]
    index = EvalIndex([make_item("held_out", p.code, p.source_id, p.problem_id) for p in held], ngram)

    def best(code: str) -> float:
        return max((h.score for h in index.hits(code) if h.how == "ngram"), default=0.0)

    def material(group: list) -> list[str]:
        return [p.code for p in group] + [m for p in group
                                          for _, m in itertools.islice(mutants(p.code, p.entry_point), max_mutants)]

    train_scores = [best(code) for code in material(train)]
    held_mutants = [m for p in held for _, m in itertools.islice(mutants(p.code, p.entry_point), max_mutants)]
    held_scores = [best(code) for code in held_mutants]
    table = [{"threshold": t,
              "train_material_removed_share": round(sum(s >= t for s in train_scores) / len(train_scores), 4)
              if train_scores else None,
              "held_out_mutants_caught_share": round(sum(s >= t for s in held_scores) / len(held_scores), 4)
              if held_scores else None} for t in thresholds]
    return {"held_out_programs": len(held), "train_programs": len(train), "train_material": len(train_scores),
            "held_out_mutants": len(held_scores), "max_train_overlap": round(max(train_scores, default=0.0), 4),
            "table": table}


def thresholds_bench(limit: int | None = None, near_threshold: float = 0.7, shingle: int = 3, num_perm: int = 128,
                     thresholds: list[float] | None = None, max_mutants: int | None = None) -> dict:
    config = DecontaminationConfig()
    started = time.perf_counter()
    problems = load("humaneval", limit=limit)
    near = near_duplicate_figures(problems, near_threshold, shingle, num_perm, max_mutants)
    decontam = decontamination_figures(problems, thresholds or [0.3, 0.4, 0.5, 0.6], config.ngram, SplitConfig(),
                                       max_mutants)
    return {"problems": len(problems), "near_threshold": near_threshold, "near_duplicates": near,
            "ngram": config.ngram, "decontamination": decontam, "seconds": round(time.perf_counter() - started, 1)}
