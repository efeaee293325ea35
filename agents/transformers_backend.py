"""In-process generation with transformers: batched ``generate`` over chat-templated prompts, CPU or GPU, with PEFT
adapters loaded once and switched per request (so each role can carry its own LoRA). No constrained decoding: a
request's JSON schema is ignored here and unparsable answers become reason codes downstream."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

from sinq.agents.llm import LLMRequest, LLMResult


def load_tokenizer(model: str):
    """AutoTokenizer first; a folder whose tokenizer class cannot be resolved (a Qwen2-typed folder with only a
    tokenizer.json) loads as a plain fast tokenizer."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError, TypeError, AttributeError):
        tokenizer = PreTrainedTokenizerFast.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: str, adapter: str | None = None, device: str | None = None, dtype: str = "auto",
                 batch_size: int = 16, gguf_file: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.model_name = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        kwargs: dict = {"dtype": dtype}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        self.tokenizer = load_tokenizer(model) if not gguf_file else self._gguf_tokenizer(model, gguf_file)
        self.model = AutoModelForCausalLM.from_pretrained(model, **kwargs).to(self.device).eval()
        self.adapters: dict[str, str] = {}
        self._lock = threading.Lock()
        self.default_adapter = self._adapter_name(adapter) if adapter else None

    @staticmethod
    def _gguf_tokenizer(model: str, gguf_file: str):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model, gguf_file=gguf_file)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def _adapter_name(self, path: str) -> str:
        """Loads a PEFT adapter once under a stable name; later requests switch to it by name."""
        if path in self.adapters:
            return self.adapters[path]
        from peft import PeftModel

        name = f"a{len(self.adapters)}"
        if not Path(path).exists():
            raise FileNotFoundError(f"adapter not found: {path}")
        if not self.adapters:
            self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name).to(self.device).eval()
        else:
            self.model.load_adapter(path, adapter_name=name)
        self.adapters[path] = name
        return name

    def _prompt(self, messages: list[dict]) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        """Serialised per instance: adapter switching is model-wide state."""
        with self._lock:
            return self._generate(requests)

    def _generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        results: list[LLMResult | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            groups[(request.adapter, request.temperature, request.top_p, request.max_tokens, request.seed,
                    request.n)].append(index)
        for (adapter, *_), indices in groups.items():
            try:
                self._use_adapter(adapter)
            except (OSError, ValueError) as exc:
                for i in indices:
                    results[i] = LLMResult(request_key=requests[i].key(), texts=[], finish_reasons=[],
                                           error=f"adapter {adapter!r} failed to load: {exc}")
                continue
            indices.sort(key=lambda i: len(self._prompt(requests[i].messages)))
            per_batch = max(1, self.batch_size // requests[indices[0]].n)
            for start in range(0, len(indices), per_batch):
                chunk = indices[start:start + per_batch]
                for i, result in zip(chunk, self._batch([requests[i] for i in chunk]), strict=True):
                    results[i] = result
        return [r for r in results if r is not None]

    def _use_adapter(self, adapter: str | None) -> None:
        wanted = self._adapter_name(adapter) if adapter else self.default_adapter
        if not self.adapters:
            return
        if wanted is None:
            self.model.base_model.disable_adapter_layers()
        else:
            self.model.base_model.enable_adapter_layers()
            self.model.set_adapter(wanted)

    def _batch(self, requests: list[LLMRequest]) -> list[LLMResult]:
        import torch

        first = requests[0]
        started = time.perf_counter()
        prompts = [self._prompt(r.messages) for r in requests]
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sample = first.temperature > 0
        if first.seed is not None:
            torch.manual_seed(first.seed)
        kwargs = {"do_sample": sample, "max_new_tokens": first.max_tokens, "num_return_sequences": first.n,
                  "pad_token_id": self.tokenizer.pad_token_id}
        if sample:
            kwargs.update(temperature=first.temperature, top_p=first.top_p, top_k=0)
        with torch.inference_mode():
            output = self.model.generate(**encoded, **kwargs)
        width = encoded["input_ids"].shape[1]
        new = output[:, width:]
        eos = self.tokenizer.eos_token_id
        latency = time.perf_counter() - started
        results = []
        for row, request in enumerate(requests):
            texts, finish, completion = [], [], 0
            for seq in new[row * first.n:(row + 1) * first.n]:
                ids = seq.tolist()
                stop = eos in ids
                ids = ids[: ids.index(eos)] if stop else [t for t in ids if t != self.tokenizer.pad_token_id]
                completion += len(ids) + (1 if stop else 0)
                texts.append(self.tokenizer.decode(ids, skip_special_tokens=True))
                finish.append("stop" if stop else "length")
            prompt_tokens = int(encoded["attention_mask"][row].sum())
            results.append(LLMResult(request_key=request.key(), texts=texts, finish_reasons=finish,
                                     prompt_tokens=prompt_tokens, completion_tokens=completion,
                                     latency_s=latency / len(requests)))
        return results
