"""Training settings, one model per concern (``[training.build]``, ``[training.train]``), in the manner of TRL's
``SFTConfig``: defaults that run on a laptop CPU with a tiny model and scale to a GPU by changing figures only."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class BuildConfig(BaseModel):
    """How training sets are made from the warehouse."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    hard_threshold: int = Field(5, ge=0, le=10, description="hard = measured difficulty >= this")
    easy_share: float = Field(0.1, ge=0, le=1, description="share of easy examples kept in generator SFT")
    difficulty_examples: bool = Field(False, description="add 'predict the difficulty' examples (no loss on the "
                                      "generation turn)")
    rounds: list[int] | None = Field(None, description="rounds to draw from (None: all)")
    held_out_splits: list[str] = Field(["test", "validation", "held_out"],
                                       description="stored problem splits that never train (the held-out rule of "
                                       "[sources.split] applies as well)")
    include_duplicates: bool = Field(False, description="keep pairs marked as duplicates of an earlier pair")
    include_flagged: bool = Field(False, description="keep pairs flagged degenerate (environment-dependent, ...)")
    equivalent_share: float = Field(0.5, ge=0, le=1, description="evaluator sets: the largest share of examples "
                                    "(SFT, DPO) or prompts (GRPO) drawn from equivalent pairs, whose right answer is "
                                    "'Yes' (0 = none; 1 = no cap); the default matches [agents.equivalence] "
                                    "evaluator_share, so training sees the mix the game shows")
    max_examples: int | None = Field(None, ge=1)
    root: Path = Field(Path("training_sets"), description="where snapshots (Parquet + card) are written")


class DecontaminationConfig(BaseModel):
    """``[training.decontamination]``: rows whose original or variant overlaps an evaluation item never train.

    An item is overlapped when its normalised AST hash equals the program's (``ast_match``) or when the share of
    shared ``ngram``-grams of the normalised token stream (imports and annotations left out), taken both ways (of the
    program's grams, of the item's grams), reaches ``max_ngram_overlap``. 0.4 is measured on HumanEval under the
    default split (README, training section): boilerplate between different problems stays at or below 0.30,
    near-twins (HumanEval/56 and /61) reach 0.50 and copies, renamed copies and embedded copies 1.0."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="False: contaminated rows may train (a user asked for it)")
    ngram: int = Field(13, ge=1)
    max_ngram_overlap: float = Field(0.4, gt=0, le=1, description="removed at or above this share")
    ast_match: bool = True
    register_held_out: bool = Field(True, description="register the held-out problems as items before each build")
    benchmark_files: list[Path] = Field([], description="HumanEval/MBPP-format JSONL, CSV with a prompt column, "
                                        ".py files: registered as items (suite = file stem) before each build")


class TrainConfig(BaseModel):
    """One fine-tuning job (TRL); LoRA through PEFT by default."""

    model_config = ConfigDict(extra="forbid")

    output_root: Path = Path("adapters")
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="> 0 overrides epochs")
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(2048, ge=32)
    lora: bool = True
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    packing: bool = Field(False, description="pack short examples into full-length rows (tuned setting)")
    padding_free: bool = Field(False, description="no pad tokens in the batch (tuned setting; flash-attn on GPU)")
    completion_only_loss: bool = Field(True, description="loss on the assistant turn only")
    beta: float = Field(0.1, gt=0, description="DPO")
    num_generations: int = Field(4, ge=2, description="GRPO completions per prompt")
    max_completion_length: int = Field(256, ge=8, description="GRPO")
    reward_concurrency: int = Field(4, ge=1, description="GRPO: sandbox reward batches in flight")
    bf16: bool | None = Field(None, description="None: on when a GPU supports it")
    seed: int = 0
    logging_steps: int = 10


class TrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str | None = Field(None, description="base model a role trains from when its agent config has none")
    build: BuildConfig = BuildConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig()
    train: TrainConfig = TrainConfig()
