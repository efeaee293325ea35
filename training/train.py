"""Fine-tuning jobs with TRL (SFT, DPO, GRPO), LoRA through PEFT by default; each job writes an adapter and
registers it with everything needed to reproduce it (base model, snapshot, hyper-parameters, library versions,
final metrics)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from sinq.training.config import TrainConfig
from sinq.warehouse import queries
from sinq.warehouse.records import content_id
from sinq.warehouse.store import Warehouse


def _versions() -> dict:
    import peft
    import torch
    import transformers
    import trl

    return {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
            "peft": peft.__version__}


def _snapshot(warehouse: Warehouse, snapshot_id: str) -> dict:
    found = queries.training_set(warehouse, snapshot_id)
    if found is None:
        raise KeyError(f"no training set {snapshot_id!r} in {warehouse.path} (sinq train build ...)")
    return found


def _bf16(config: TrainConfig) -> bool:
    import torch

    if config.bf16 is not None:
        return config.bf16
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _common(config: TrainConfig, output: Path) -> dict:
    return {"output_dir": str(output), "learning_rate": config.learning_rate, "num_train_epochs": config.epochs,
            "max_steps": config.max_steps, "per_device_train_batch_size": config.batch_size,
            "gradient_accumulation_steps": config.grad_accum, "logging_steps": config.logging_steps,
            "seed": config.seed, "bf16": _bf16(config), "report_to": "none", "save_strategy": "no",
            "use_cpu": not _has_gpu(), "dataloader_num_workers": 0}


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _peft(config: TrainConfig):
    if not config.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules, task_type="CAUSAL_LM")


def trainer_for(kind: str, base: str, dataset, config: TrainConfig, output: Path, reward=None):
    """The TRL trainer for a job (also used by the training bench, which times it without registering)."""
    from transformers import AutoModelForCausalLM

    from sinq.agents.transformers_backend import load_tokenizer

    tokenizer = load_tokenizer(base)
    tokenizer.padding_side = "left" if kind == "grpo" else "right"
    model = AutoModelForCausalLM.from_pretrained(base, dtype="bfloat16" if _bf16(config) else "float32")
    common = _common(config, output)
    if kind == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(**common, max_length=config.max_length, packing=config.packing,
                         padding_free=config.padding_free, completion_only_loss=config.completion_only_loss)
        return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=_peft(config))
    if kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**common, beta=config.beta, max_length=config.max_length)
        return DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=_peft(config))
    if kind == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        per_device = max(config.batch_size, config.num_generations)
        per_device -= per_device % config.num_generations
        args = GRPOConfig(**{**common, "per_device_train_batch_size": per_device},
                          num_generations=config.num_generations,
                          max_completion_length=config.max_completion_length)
        return GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                           processing_class=tokenizer, peft_config=_peft(config))
    raise ValueError(f"unknown training kind {kind!r} (sft | dpo | grpo)")


def train(warehouse: Warehouse, kind: str, role: str, base: str, snapshot_id: str, config: TrainConfig,
          sandbox=None, run_id: str | None = None) -> dict:
    """Run one job and register its adapter (not promoted: `sinq models promote` or the self-play flow does)."""
    from datasets import load_dataset

    info = _snapshot(warehouse, snapshot_id)
    if (info["kind"], info["role"]) != (kind, role):
        raise ValueError(f"{snapshot_id} is a {info['kind']} set for the {info['role']}, not {kind}/{role}")
    dataset = load_dataset("parquet", data_files=str(Path(info["path"]) / "train.parquet"), split="train")
    hyper = config.model_dump(mode="json")
    job_id = f"{kind}-{role}-{content_id(base, snapshot_id, hyper, time.time_ns())[:12]}"
    output = Path(config.output_root) / job_id
    started = datetime.now(UTC)
    reward = None
    if kind == "grpo":
        from sinq.training.rewards import SandboxReward

        if sandbox is None:
            raise ValueError("GRPO needs a sandbox for its reward")
        reward = SandboxReward(sandbox, role)
    warehouse.store({"training_jobs": [{
        "job_id": job_id, "kind": kind, "role": role, "base_model": base, "snapshot_id": snapshot_id,
        "hyperparams": json.dumps(hyper), "versions": json.dumps(_versions()), "status": "running",
        "metrics": None, "run_id": run_id, "started_at": started, "finished_at": None}]})
    try:
        trainer = trainer_for(kind, base, dataset, config, output, reward)
        result = trainer.train()
        trainer.save_model(str(output))
        trainer.processing_class.save_pretrained(str(output))
    except BaseException as exc:
        _finish(warehouse, job_id, "failed", {"error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    if reward is not None:
        metrics["mean_reward"] = reward.mean()
    _finish(warehouse, job_id, "completed", metrics)
    warehouse.store({"adapters": [{
        "adapter_id": job_id, "role": role, "base_model": base, "path": str(output.resolve()), "job_id": job_id,
        "snapshot_id": snapshot_id, "promoted": False, "promoted_at": None, "created_at": datetime.now(UTC)}]})
    return {"adapter_id": job_id, "path": str(output.resolve()), "metrics": metrics, "lora": config.lora}


def _finish(warehouse: Warehouse, job_id: str, status: str, metrics: dict) -> None:
    queries.finish_job(warehouse, job_id, status, metrics, datetime.now(UTC))
