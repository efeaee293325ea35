"""Which agent plays each role, and how (``[agents.generator]``, ``[agents.evaluator]``, ``[agents.baseline]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agents.baselines import BaselineConfig


class Sampling(BaseModel):
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1)
    seed: int | None = None


class AgentConfig(BaseModel):
    kind: Literal["baseline", "llm"] = "baseline"
    backend: Literal["openai", "transformers", "vllm-batch"] | None = None
    model: str | None = Field(None, description="a local path or a served model name; nothing is downloaded")
    adapter: str | None = None
    base_url: str | None = Field(None, description="for the openai backend")
    sampling: Sampling = Sampling()


class AgentsConfig(BaseModel):
    generator: AgentConfig = AgentConfig()
    evaluator: AgentConfig = AgentConfig()
    baseline: BaselineConfig = BaselineConfig()
    answers: int = Field(4, ge=1, description="evaluator answers per pair: the n of difficulty")
    pairs_per_problem: int = Field(1, ge=1)
    target_difficulty: int = Field(5, ge=0, le=10)
