"""Fine-tuning jobs with TRL (SFT, DPO, GRPO), LoRA through PEFT by default; each job writes an adapter and
registers it with everything needed to reproduce it (base model, snapshot, hyper-parameters, library versions,
final metrics).

A job is reaped like a run (``training/jobs.py``): its row says where it lives and beats while it trains, so a
killed one is found ``crashed`` later. Its adapter is written to a hidden partial folder and renamed into place, then
registered in the same transaction that marks the job completed: a folder at an adapter's path is always whole."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sinq.game.errors import SinqError
from sinq.training import jobs
from sinq.training.config import TrainConfig
from sinq.warehouse import jobs as job_queries
from sinq.warehouse import queries
from sinq.warehouse.records import content_id
from sinq.warehouse.store import Warehouse


class TrainingInputError(SinqError, ValueError):
    """Input a job cannot train on (base model, chat template, max_length): one line, exit 2 like a bad argument.
    A ValueError too, so callers that map bad input by that class keep doing so."""

    exit_code = 2


WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json")


def check_base(base: str) -> Path:
    """The base model is a local model folder (config.json and weights): nothing is downloaded, and a wrong path is
    one clear line before anything is recorded instead of a loader's traceback."""
    hint = "--base (or [agents.<role>] model, [training] base_model) takes a local model folder: config.json, " \
           "weights, tokenizer"
    path = Path(base).expanduser()
    if not path.exists():
        raise TrainingInputError(f"base model {base}: no such folder", hint=hint)
    if not path.is_dir():
        raise TrainingInputError(f"base model {base} is a file, not a model folder", hint=hint)
    if not (path / "config.json").is_file():
        what = ("a PEFT adapter (adapter_config.json): give the model it was trained on"
                if (path / "adapter_config.json").is_file() else "no config.json in it")
        raise TrainingInputError(f"base model {base} is not a model folder: {what}", hint=hint)
    if not any(next(path.glob(pattern), None) for pattern in WEIGHTS):
        raise TrainingInputError(f"base model {base} has no weights (*.safetensors or pytorch_model*.bin)", hint=hint)
    return path


def base_tokenizer(base: str):
    """The base model's tokenizer, which must carry a chat template: every training set is conversational and TRL
    renders it with that template. No default template is applied: the agents prompt the trained model through the
    base model's own template, so training on another one would teach a format it is never shown."""
    from sinq.agents.transformers_backend import load_tokenizer

    check_base(base)
    try:
        tokenizer = load_tokenizer(base)
    except Exception as exc:  # transformers raises OSError, ValueError, TypeError... for a broken tokenizer
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise TrainingInputError(
            f"cannot load the tokenizer of base model {base}: {type(exc).__name__}: {first}",
            hint="the folder needs tokenizer.json or tokenizer_config.json and its files") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise TrainingInputError(
            f"base model {base} has no chat template: training sets are chat conversations, rendered with the "
            "tokenizer's template", hint="use a chat/instruct model, or add one (chat_template in "
                                         "tokenizer_config.json, or chat_template.jinja)")
    return tokenizer


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


def trainer_for(kind: str, base: str, dataset, config: TrainConfig, output: Path, reward=None, callbacks=None,
                tokenizer=None):
    """The TRL trainer for a job (also used by the training bench, which times it without registering)."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    tokenizer = tokenizer if tokenizer is not None else base_tokenizer(base)
    tokenizer.padding_side = "left" if kind == "grpo" else "right"
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype="bfloat16" if _bf16(config) else "float32")
    except (OSError, ValueError, KeyError, SafetensorError) as exc:  # an unknown config, damaged weights
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise TrainingInputError(f"cannot load base model {base}: {type(exc).__name__}: {first}") from exc
    common = _common(config, output)
    if kind == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(**common, max_length=config.max_length, packing=config.packing,
                         padding_free=config.padding_free, completion_only_loss=config.completion_only_loss)
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=_peft(config), callbacks=callbacks)
        _check_left(trainer, len(dataset), config)
        return trainer
    if kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**common, beta=config.beta, max_length=config.max_length)
        return DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=_peft(config), callbacks=callbacks)
    if kind == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        per_device = max(config.batch_size, config.num_generations)
        per_device -= per_device % config.num_generations
        args = GRPOConfig(**{**common, "per_device_train_batch_size": per_device},
                          num_generations=config.num_generations,
                          max_completion_length=config.max_completion_length)
        return GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                           processing_class=tokenizer, peft_config=_peft(config), callbacks=callbacks)
    raise ValueError(f"unknown training kind {kind!r} (sft | dpo | grpo)")


def _check_left(trainer, examples: int, config: TrainConfig) -> None:
    """TRL drops an SFT example whose assistant turn lies wholly past ``max_length`` (nothing left to learn): none
    left is one clear line (not a sampler's ``num_samples=0``), some dropped a warning with the count."""
    left = len(trainer.train_dataset)
    hint = ("raise max_length: [training.train] max_length (--set training.train.max_length=N), or `sinq train "
            "bench --max-length N`")
    if left == 0:
        raise TrainingInputError(f"max_length {config.max_length} drops every example ({examples} of {examples}): "
                                 "no assistant turn starts within it", hint=hint)
    if not config.packing and left < examples:  # packed rows are not examples: the count is only known unpacked
        print(f"warning: max_length {config.max_length} dropped {examples - left} of {examples} examples (no "
              "assistant turn within it)", file=sys.stderr)


class _Heartbeat:
    """A TRL callback that beats the job's row at most every ``HEARTBEAT_EVERY_S`` while it trains."""

    def __init__(self, warehouse: Warehouse, job_id: str) -> None:
        self.warehouse, self.job_id, self.last = warehouse, job_id, time.monotonic()

    def callback(self):
        from transformers import TrainerCallback

        beat = self._beat

        class Beat(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                beat()

        return Beat()

    def _beat(self) -> None:
        if time.monotonic() - self.last >= jobs.HEARTBEAT_EVERY_S:
            self.last = time.monotonic()
            jobs.beat_job(self.warehouse, self.job_id)


def train(warehouse: Warehouse, kind: str, role: str, base: str, snapshot_id: str, config: TrainConfig,
          sandbox=None, run_id: str | None = None) -> dict:
    """Run one job and register its adapter (not promoted: `sinq models promote` or the self-play flow does).
    Dead jobs left ``running`` are reaped first; bad input is refused before a job row exists."""
    from datasets import load_dataset

    dead = jobs.reap_dead_jobs(warehouse)
    if dead:
        logging.getLogger(__name__).warning("marked %d dead training job(s) crashed: %s", len(dead),
                                            ", ".join(d["job_id"] for d in dead))
    info = _snapshot(warehouse, snapshot_id)
    if (info["kind"], info["role"]) != (kind, role):
        raise ValueError(f"{snapshot_id} is a {info['kind']} set for the {info['role']}, not {kind}/{role}")
    tokenizer = base_tokenizer(base)
    dataset = load_dataset("parquet", data_files=str(Path(info["path"]) / "train.parquet"), split="train")
    if len(dataset) == 0:
        raise TrainingInputError(f"training set {snapshot_id} has no examples")
    hyper = config.model_dump(mode="json")
    job_id = f"{kind}-{role}-{content_id(base, snapshot_id, hyper, time.time_ns())[:12]}"
    output = (Path(config.output_root) / job_id).resolve()
    partial = jobs.partial_path(output)
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
        "metrics": None, "run_id": run_id, "started_at": started, "finished_at": None,
        "output_path": str(output), **jobs.identity()}]})
    try:
        partial.mkdir(parents=True, exist_ok=False)
        heartbeat = _Heartbeat(warehouse, job_id)
        trainer = trainer_for(kind, base, dataset, config, partial, reward, [heartbeat.callback()], tokenizer)
        result = trainer.train()
        trainer.save_model(str(partial))
        trainer.processing_class.save_pretrained(str(partial))
        metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
        if reward is not None:
            metrics["mean_reward"] = reward.mean()
        partial.rename(output)  # whole, or not there at all
        _register(warehouse, job_id, metrics, {
            "adapter_id": job_id, "role": role, "base_model": base, "path": str(output), "job_id": job_id,
            "snapshot_id": snapshot_id, "promoted": False, "promoted_at": None, "created_at": datetime.now(UTC)})
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(output, ignore_errors=True)  # renamed, then the registration failed: never half-registered
        _finish(warehouse, job_id, "failed", {"error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise
    return {"adapter_id": job_id, "path": str(output), "metrics": metrics, "lora": config.lora}


def _register(warehouse: Warehouse, job_id: str, metrics: dict, adapter: dict) -> None:
    """The job becomes ``completed`` and its adapter registered in one transaction: never one without the other."""

    def complete(con, rows: dict) -> None:
        job_queries.complete_job_in(con, job_id, metrics, datetime.now(UTC))

    warehouse.store({"adapters": [adapter]}, prepare=complete)


def _finish(warehouse: Warehouse, job_id: str, status: str, metrics: dict) -> None:
    queries.finish_job(warehouse, job_id, status, metrics, datetime.now(UTC))
