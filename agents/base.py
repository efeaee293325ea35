"""Agent interfaces, batch-first: a generator answers many (problem, difficulty, n) at once, an evaluator many
(original, variant, n). LLM agents and the model-free baselines implement the same two methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sinq.sandbox.outcome import Verdict
from sinq.sources.problem import Problem


@dataclass
class GeneratorRequest:
    problem: Problem
    target_difficulty: int
    n: int = 1


@dataclass
class GeneratorSample:
    problem_id: str
    program: str | None
    input: str | None
    reason: str | None = None
    """None for a usable sample; otherwise the rejection code (kept with the sample)."""
    meta: dict = field(default_factory=dict)
    verdict: Verdict | None = None
    """The sandbox verdict that settled the claim (None when it never reached the sandbox)."""


@dataclass
class EvaluatorRequest:
    pair_id: str
    original: str
    variant: str
    entry_point: str
    n: int
    seed_inputs: list[str] = field(default_factory=list)


@dataclass
class EvaluatorAnswer:
    pair_id: str
    input: str | None
    equivalent: bool | None = None
    reason: str | None = None
    """None when the answer carries an input to check; a non-answer is counted as a failure all the same."""


class Generator(Protocol):
    name: str

    def generate(self, requests: list[GeneratorRequest]) -> list[list[GeneratorSample]]: ...


class Evaluator(Protocol):
    name: str

    def evaluate(self, requests: list[EvaluatorRequest]) -> list[list[EvaluatorAnswer]]: ...
