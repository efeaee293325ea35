"""A tiny random chat model built from a config, for tests and benches: nothing can be downloaded here, and the real
loading code (transformers, PEFT, vLLM) must still be exercised. Qwen2-typed, head_dim 64 (vLLM's CPU attention
needs it), a byte-level BPE tokenizer trained on the spot, and a ChatML template."""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    from sinq.game.prompts import ALICE_SYSTEM, BOB_SYSTEM, render_alice, render_bob

    programs = ["def f(x):\n    return x + 1\n", "def add(a, b):\n    return [a[i] + b[i] for i in range(len(a))]\n"]
    texts = [ALICE_SYSTEM, BOB_SYSTEM, render_bob("They differ on zero.", False, "{'x': 0}")]
    texts += [render_alice("Off by one.", p, "{'x': 0}") for p in programs]
    return texts * 4 + [bytes(range(32, 127)).decode()]


def make_tiny_model(path: str | Path, vocab_size: int = 512, layers: int = 2, seed: int = 0) -> Path:
    """Writes a loadable model folder (config, safetensors weights, tokenizer, chat template) and returns it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(_corpus(), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        bos_token=None, unk_token=None)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(path)
    config_file = path / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config, indent=1))

    torch.manual_seed(seed)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=8192,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        tie_word_embeddings=True, torch_dtype="float32")
    model = AutoModelForCausalLM.from_config(model_config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    return path
