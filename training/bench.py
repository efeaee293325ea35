"""``sinq train bench``: SFT tokens/s with TRL's defaults and with our tuned settings (packing with padding-free
batches, loss on the assistant turn only, LoRA) on the same data and the same model built from a config. Tokens
are the examples' real (unpadded) tokens, so padding counts as waste, as it is."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from sinq.game.prompts import alice_messages, render_alice
from sinq.training.config import TrainConfig


def bench_examples(count: int, seed: int = 0) -> list[dict]:
    """Generator SFT examples from HumanEval with verified-looking answers of varied length (what we train on)."""
    from sinq.sources.loaders import load

    rng = random.Random(seed)
    problems = [p for p in load("humaneval") if p.reason is None]
    examples = []
    for i in range(count):
        p = problems[i % len(problems)]
        variant = p.code.replace("return ", "return not ", 1) if rng.random() < 0.5 else p.code + "\n"
        answer = render_alice("The variant negates the first return value.", variant, (p.seed_inputs or ["{}"])[0])
        examples.append({"prompt": alice_messages(p.program, p.entry_point or "f", rng.randint(0, 10)),
                         "completion": [{"role": "assistant", "content": answer}]})
    return examples


def _tokens(tokenizer, examples: list[dict], max_length: int) -> int:
    total = 0
    for e in examples:
        text = tokenizer.apply_chat_template(e["prompt"] + e["completion"], tokenize=False)
        total += min(len(tokenizer(text, add_special_tokens=False)["input_ids"]), max_length)
    return total


def train_bench(model: str | None = None, examples: int = 256, max_steps: int = 8, batch_size: int = 4,
                max_length: int = 1024, layers: int = 4) -> dict:
    from datasets import Dataset

    from sinq.agents.tiny_model import make_tiny_model
    from sinq.agents.transformers_backend import load_tokenizer
    from sinq.training.train import trainer_for

    with tempfile.TemporaryDirectory(prefix="sinq-train-bench-") as tmp:
        model = model or str(make_tiny_model(Path(tmp, "model"), vocab_size=2048, layers=layers))
        rows = bench_examples(examples)
        dataset = Dataset.from_list(rows)
        tokenizer = load_tokenizer(model)
        figures = {}
        settings = {
            "trl_defaults": TrainConfig(lora=False, packing=False, padding_free=False, completion_only_loss=True,
                                        batch_size=batch_size, max_length=max_length, max_steps=max_steps),
            "tuned": TrainConfig(lora=True, packing=True, padding_free=True, completion_only_loss=True,
                                 batch_size=batch_size, max_length=max_length, max_steps=max_steps),
        }
        for name, config in settings.items():
            trainer = trainer_for("sft", model, dataset, config.model_copy(update={"logging_steps": 1000}),
                                  Path(tmp, name))
            seen = _examples_seen(trainer, config, rows, tokenizer, max_length)
            started = time.perf_counter()
            trainer.train()
            elapsed = time.perf_counter() - started
            figures[name] = {"tokens": seen, "seconds": round(elapsed, 2), "tokens_per_s": round(seen / elapsed, 1)}
    return {"trl_defaults_tokens_per_s": figures["trl_defaults"]["tokens_per_s"],
            "tuned_tokens_per_s": figures["tuned"]["tokens_per_s"],
            "speedup": round(figures["tuned"]["tokens_per_s"] / figures["trl_defaults"]["tokens_per_s"], 3),
            "details": figures, "examples": examples, "max_steps": max_steps, "batch_size": batch_size}


def _examples_seen(trainer, config: TrainConfig, rows: list[dict], tokenizer, max_length: int) -> int:
    """Real tokens the run will process: packed rows hold several examples, padded rows one each."""
    dataset = trainer.train_dataset
    steps = config.max_steps
    rows_seen = min(len(dataset), steps * config.batch_size * config.grad_accum)
    if "input_ids" in dataset.column_names:
        return sum(min(len(dataset[i]["input_ids"]), max_length) for i in range(rows_seen))
    return _tokens(tokenizer, rows[:rows_seen], max_length)
