"""Builds each role's agent from its config: the model-free baselines, or an LLM agent over the chosen backend,
wrapped in the warehouse response cache so that a rerun or a resumed run never pays twice."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sinq.agents.baselines import FuzzEvaluator, MutationGenerator
from sinq.agents.cache import CachedBackend, CarriedResponses
from sinq.agents.config import AgentConfig, BaselineConfig
from sinq.agents.llm_agents import LLMEvaluator, LLMGenerator
from sinq.sandbox.pool import WorkerPool
from sinq.warehouse.store import Warehouse

_loaded: dict[tuple, object] = {}
_loaded_lock = threading.Lock()


def llm_agent_id(role: str, config: AgentConfig) -> str:
    """How an LLM agent is named in the warehouse (samples, answers and the response cache alike)."""
    return f"{role}:{config.backend}:{config.model}:{config.adapter or '-'}"


def _transformers(config: AgentConfig):
    """One loaded model per process and (model, device, batch size): batches and adapters share it (adapters are
    switched per request), so a nightly run reads the weights once, not once per batch."""
    from sinq.agents.transformers_backend import TransformersBackend

    key = (config.model, config.device, config.batch_size)
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = TransformersBackend(config.model or "", device=config.device,
                                               batch_size=config.batch_size)
        return _loaded[key]


def make_backend(config: AgentConfig):
    """The raw LLM backend a config names (a transformers model is loaded once per process)."""
    if config.backend == "openai":
        from sinq.agents.openai_backend import OpenAIBackend

        return OpenAIBackend(config.base_url or "", config.model or "", api_key=os.environ.get(config.api_key_env),
                             concurrency=config.concurrency, timeout_s=config.timeout_s)
    if config.backend == "transformers":
        return _transformers(config)
    if config.backend == "vllm-batch":
        from sinq.agents.vllm_batch_backend import VLLMBatchBackend

        return VLLMBatchBackend(config.model or "", python=config.vllm_python, max_model_len=config.max_model_len,
                                extra_args=config.vllm_args, timeout_s=config.timeout_s)
    raise ValueError(f"unknown LLM backend {config.backend!r}")


def llm_backend(config: AgentConfig, role: str, warehouse: Warehouse | CarriedResponses | None = None,
                run_id: str | None = None, prompt_version: str | None = None):
    if config.replay and warehouse is None:
        raise ValueError("replay mode reads the response cache: it needs a warehouse")
    backend = None if config.replay else make_backend(config)
    if warehouse is None or not (config.cache or config.replay):
        return backend
    return CachedBackend(backend, warehouse, llm_agent_id(role, config), prompt_version=prompt_version, run_id=run_id,
                         replay=config.replay)


def resolve_adapter(config: AgentConfig, role: str, warehouse: Warehouse | None) -> AgentConfig:
    """``adapter = "promoted"`` means the adapter `sinq models promote` chose for this role (the base model while
    none is); a promoted full fine-tune (no adapter_config.json) replaces the model instead. One trained on another
    base model than the role's configured ``model`` is refused (AdapterBaseMismatch, exit 2): its gate figures say
    nothing about this model, and a LoRA on the wrong base is garbage or a shape error."""
    if config.adapter != "promoted":
        return config
    from sinq.warehouse.adapters import check_base, promoted

    chosen = promoted(warehouse, role) if warehouse is not None else None
    if chosen is None:
        return config.model_copy(update={"adapter": None})
    check_base(chosen, config.model, role, what=f"[agents.{role}] model", served=config.backend == "openai")
    if Path(chosen["path"], "adapter_config.json").exists():
        return config.model_copy(update={"adapter": chosen["path"]})
    return config.model_copy(update={"model": chosen["path"], "adapter": None})


def make_generator(config: AgentConfig, baseline: BaselineConfig, sandbox: WorkerPool,
                   warehouse: Warehouse | None = None, run_id: str | None = None,
                   responses: CarriedResponses | None = None):
    """``responses`` instead of ``warehouse``: a worker that cannot open it (the adapter is already resolved)."""
    if config.kind == "baseline":
        return MutationGenerator(sandbox, baseline)
    config = resolve_adapter(config, "generator", warehouse)
    backend = llm_backend(config, "generator", responses or warehouse, run_id, LLMGenerator.prompt_version)
    return LLMGenerator(backend, config)


def make_evaluator(config: AgentConfig, baseline: BaselineConfig, sandbox: WorkerPool,
                   warehouse: Warehouse | None = None, run_id: str | None = None,
                   responses: CarriedResponses | None = None):
    if config.kind == "baseline":
        return FuzzEvaluator(sandbox, baseline)
    config = resolve_adapter(config, "evaluator", warehouse)
    backend = llm_backend(config, "evaluator", responses or warehouse, run_id, LLMEvaluator.prompt_version)
    return LLMEvaluator(backend, config)
