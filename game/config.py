"""What counts as a duplicate and as a degenerate variant (``[quality.dedup]``, ``[quality.flags]`` in sinq.toml).

Figures behind the defaults, measured on HumanEval (every first-order mutant of ``agents.mutation``: 2,330 over 164
problems; 21,376 pairs of mutants of one problem at different AST nodes; 2,207 second-order mutants standing for
a one-token change of an earlier variant): with 3-token shingles, a MinHash Jaccard ≥ 0.7 alone would call 95.7 %
of the different-site pairs near duplicates (storing every mutant would keep 332 of 2,330); confirmed by the two
edits of the original touching one place it calls none of them so (keeps 1,933: the rest change the same node or
one inside the other) and still catches 96.3 % of the one-token changes (the misses are short programs, where one
token moves the Jaccard below 0.7). The baseline's diverging inputs are at most 1.6 × the largest seed input.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DedupConfig(BaseModel):
    """Duplicates leave ``verified_pairs`` and training sets: a pair that repeats an earlier one (same problem, any
    round or run) teaches nothing new and skews what a model sees."""

    model_config = ConfigDict(extra="forbid")

    near: bool = Field(True, description="look for near duplicates as well as exact ones (same normalised AST)")
    near_threshold: float = Field(0.7, ge=0.0, le=1.0, description="MinHash Jaccard of the variants' token "
                                  "shingles from which two variants are candidates; confirmed by their edits of the "
                                  "original touching one place")
    shingle: int = Field(3, ge=1, description="tokens per shingle")
    num_perm: int = Field(128, ge=16, description="MinHash permutations (the estimate's error ~ 1/sqrt(num_perm))")
    seed: int = Field(1, description="MinHash seed; every signature compared must use the same one")


class FlagsConfig(BaseModel):
    """Degenerate variants stay stored and visible, flagged, and are left out of training sets by default."""

    model_config = ConfigDict(extra="forbid")

    max_input_factor: float = Field(10.0, gt=0, description="a diverging input longer than this many times the "
                                    "largest seed input is oversized")
    min_input_chars: int = Field(256, ge=0, description="and longer than this many characters (short inputs are "
                                 "never oversized, whatever the seeds)")


class QualityConfig(BaseModel):
    """Data hygiene applied when a pair is stored (set once on its row: the warehouse is insert-only)."""

    model_config = ConfigDict(extra="forbid")

    dedup: DedupConfig = DedupConfig()
    flags: FlagsConfig = FlagsConfig()
