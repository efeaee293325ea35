"""The Python builtin identifier-swap benchmark (inverse scaling; the paper's 1.65 → 5.35 %): a program starts by
swapping two builtins (``print, range = range, print``) and the model must pick the continuation that is right
*after* the swap. Format: a CSV with ``prompt``, ``classes`` (a Python list literal of two completions) and
``answer_index``.

``loglikelihood``: the completion with the larger summed log-probability of its tokens after the prompt wins, one
query per item (transformers, with the PEFT adapter, loaded through ``agents.transformers_backend``).
``generate``: the model sees both completions as options 1 and 2 and answers a number; every item is asked in both
orders (two queries), because the published file has the right completion second on every row and a constant
answer must not look like skill."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sinq.evals.common import Clock, EvalError, EvalRun, Item, Result, answers_or_fail, offline, rate
from sinq.evals.config import EvalConfig
from sinq.game import syntax

SUITE = "identifier-swap"
SUITE_VERSION = "1"
MODES = ("loglikelihood", "generate")
SYSTEM = ("You read the beginning of a Python program and two possible continuations. Answer with the number of "
          "the continuation that does what the program means, given everything the program did before it: 1 or 2. "
          "Reply with the number only.")

Scorer = Callable[[Sequence[tuple[str, str]]], list[float]]
"""(context, continuation) pairs → summed log-probability of each continuation's tokens after its context."""


@dataclass
class SwapItem:
    prompt: str
    classes: tuple[str, str]
    answer_index: int
    item: Item


@dataclass
class Loaded:
    """The distinct items of a file and the rows left out as repeats: the stored results are keyed by item (prompt +
    the right completion), so a repeated row would be scored twice and stored once."""

    items: list[SwapItem]
    duplicates: int = 0
    conflicting: int = 0
    """Repeats whose other completion or answer position differs from the first row's (the first row is kept)."""


def load(path: Path, limit: int | None = None) -> list[SwapItem]:
    """The file's distinct items (``read``)."""
    return read(path, limit).items


def read(path: Path, limit: int | None = None) -> Loaded:
    """The file's rows, one item per distinct (prompt, right completion), the first row kept and the repeats counted;
    ``limit`` counts distinct items. A row that is not in the format stops the evaluation with its line number."""
    path = Path(path)
    if not path.exists():
        raise EvalError(f"{path} does not exist")
    if not path.is_file():
        raise EvalError(f"{path} is not a file (a CSV with prompt, classes, answer_index)")
    loaded = Loaded([])
    seen: dict[str, SwapItem] = {}
    csv.field_size_limit(1 << 30)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                if limit is not None and len(loaded.items) >= limit:
                    break
                it = _row(row, path, number)
                first = seen.get(it.item.item_id)
                if first is not None:
                    loaded.duplicates += 1
                    loaded.conflicting += (first.classes, first.answer_index) != (it.classes, it.answer_index)
                    continue
                seen[it.item.item_id] = it
                loaded.items.append(it)
    except UnicodeDecodeError as exc:
        raise EvalError(f"{path} is not UTF-8 text (byte {exc.start}): not a CSV file") from None
    except csv.Error as exc:
        raise EvalError(f"{path}: not a readable CSV file: {exc}") from None
    if not loaded.items:
        raise EvalError(f"{path} holds no rows")
    return loaded


def _row(row: dict, path: Path, number: int) -> SwapItem:
    try:
        classes = syntax.literal_eval(row["classes"])
        answer = int(row["answer_index"])
        prompt = row["prompt"]
    except (KeyError, ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise EvalError(f"{path}:{number}: not an identifier-swap row (prompt, classes, answer_index): "
                        f"{exc}") from exc
    if not (isinstance(classes, (list, tuple)) and len(classes) == 2 and all(isinstance(c, str) for c in classes)):
        raise EvalError(f"{path}:{number}: classes must be a list of two strings")
    if not all(c.strip() for c in classes):
        raise EvalError(f"{path}:{number}: a completion in classes is empty (nothing to score)")
    if answer not in (0, 1):
        raise EvalError(f"{path}:{number}: answer_index must be 0 or 1, got {answer}")
    if not isinstance(prompt, str) or not prompt.strip():
        raise EvalError(f"{path}:{number}: the prompt is empty (the program before the continuation is the "
                        "question)")
    # the decontamination list's text of a row: the prompt completed by the right class (training.decontam)
    item = Item(SUITE, prompt + classes[answer], f"{path.name}:{number}")
    return SwapItem(prompt, (classes[0], classes[1]), answer, item)


# ---- loglikelihood


class TransformersScorer:
    """Summed continuation log-probabilities from a causal LM (+ adapter), loaded by the agents' own loading code
    (``TransformersBackend``: tokenizer fallbacks, dtype, device, PEFT) and used for forward passes only. Context and
    continuation are tokenised separately and joined, as lm-evaluation-harness does, so a continuation's tokens are
    the same whichever prompt precedes it."""

    def __init__(self, model: str, adapter: str | None = None, device: str | None = None, batch_size: int = 8
                 ) -> None:
        offline()
        from sinq.agents.transformers_backend import TransformersBackend

        try:
            self.backend = TransformersBackend(model, adapter=adapter, device=device, dtype="auto")
        except (OSError, ValueError) as exc:
            raise EvalError(f"cannot load model {model!r}{f' with adapter {adapter!r}' if adapter else ''}: "
                            f"{' '.join(str(exc).split())[:300]}") from exc
        self.tokenizer = self.backend.tokenizer
        self.model = self.backend.model
        self.device = self.backend.device
        self.batch_size = batch_size
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 4096)

    def _encode(self, context: str, continuation: str) -> tuple[list[int], int]:
        ctx = self.tokenizer(context, add_special_tokens=False)["input_ids"]
        cont = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not cont:
            raise EvalError("an empty continuation cannot be scored")
        if len(cont) >= self.max_length:
            raise EvalError(f"a continuation of {len(cont)} tokens does not fit the model's {self.max_length}")
        ids = (ctx + cont)[-self.max_length:]  # the context loses its start, never the continuation
        return ids, len(cont)

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        import torch

        encoded = [self._encode(c, t) for c, t in pairs]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
        scores: list[float] = [0.0] * len(encoded)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                width = max(len(encoded[i][0]) for i in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):  # right padding: positions stay those of an unpadded sequence
                    seq = encoded[i][0]
                    ids[row, :len(seq)] = torch.tensor(seq)
                    mask[row, :len(seq)] = 1
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1)
                for row, i in enumerate(chunk):
                    seq, n_cont = encoded[i]
                    end = len(seq)
                    targets = torch.tensor(seq[end - n_cont:], device=logprobs.device)
                    predicted = logprobs[row, end - n_cont - 1:end - 1]
                    scores[i] = float(predicted.gather(1, targets[:, None]).sum())
        return scores


class ServedScorer:
    """Summed continuation log-probabilities from an OpenAI-compatible completions server that echoes the prompt's
    log-probabilities (``vllm serve``): context and continuation are tokenised separately by the server's
    ``/tokenize`` and the joined ids sent as the prompt, so a served model scores exactly as ``TransformersScorer``
    scores the same weights. A server without ``/tokenize`` is sent the joined text; the continuation's tokens are
    then those that start at or after the context's end (a token across the boundary counts for the context).
    Chat-only servers cannot score log-likelihood: that is one EvalError naming the server's answer."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 120.0,
                 batch_size: int = 8) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.root = self.base_url.removesuffix("/v1")
        self.model = model
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout_s, transport=httpx.HTTPTransport(retries=2))
        self.tokenize: bool | None = None
        self.max_model_len: int | None = None
        self.known: dict[str, list[int]] = {}

    def _post(self, url: str, body: dict) -> dict:
        import httpx

        try:
            response = self.client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise EvalError(f"the server at {self.base_url} did not answer: {type(exc).__name__}: {exc}",
                            exit_code=3) from exc
        if response.status_code >= 400:
            raise EvalError(f"{url} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def _ids(self, text: str) -> list[int] | None:
        """The server's token ids of ``text``, asked once per text (an item's prompt precedes both completions)."""
        if self.tokenize is False:
            return None
        if text in self.known:
            return self.known[text]
        import httpx

        try:
            response = self.client.post(f"{self.root}/tokenize", json={"model": self.model, "prompt": text,
                                                                        "add_special_tokens": False})
        except httpx.HTTPError:
            response = None
        if response is None or response.status_code >= 400:
            self.tokenize = False
            return None
        self.tokenize = True
        answer = response.json()
        self.max_model_len = answer.get("max_model_len") or self.max_model_len
        self.known[text] = list(answer["tokens"])
        return self.known[text]

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        prompts: list[list[int] | str] = []
        spans: list[tuple[str, int, int]] = []
        for context, continuation in pairs:
            if not continuation:
                raise EvalError("an empty continuation cannot be scored")
            ctx, cont = self._ids(context), self._ids(continuation)
            if ctx is not None and cont is not None:
                room = (self.max_model_len or 1 << 30) - 1  # one generated token: the server insists on one
                if len(cont) >= room:
                    raise EvalError(f"a continuation of {len(cont)} tokens does not fit the served "
                                    f"{self.max_model_len}")
                joined = (ctx + cont)[-room:]  # the context loses its start, never the continuation
                prompts.append(joined)
                spans.append(("ids", len(joined) - len(cont), len(cont)))
            else:
                prompts.append(context + continuation)
                spans.append(("text", len(context), len(context) + len(continuation)))
        scores: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start:start + self.batch_size]
            data = self._post(f"{self.base_url}/completions", {
                "model": self.model, "prompt": chunk, "max_tokens": 1, "echo": True, "logprobs": 0,
                "temperature": 0.0})
            choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
            if len(choices) != len(chunk):
                raise EvalError(f"{self.base_url}/completions returned {len(choices)} choices for {len(chunk)} "
                                "prompts")
            for choice, (kind, low, high) in zip(choices, spans[start:start + len(chunk)], strict=True):
                logprobs = choice.get("logprobs") or {}
                values = logprobs.get("token_logprobs")
                if not values:
                    raise EvalError(f"{self.base_url} returned no prompt log-probabilities (echo with logprobs "
                                    "is needed: vllm serve has it, chat-only servers do not)")
                if kind == "ids":
                    picked = values[low:low + high]
                else:
                    picked = [v for v, at in zip(values, logprobs.get("text_offset") or [], strict=False)
                              if low <= at < high]
                if not picked or any(v is None for v in picked):
                    raise EvalError(f"{self.base_url} returned no log-probability for a continuation's tokens")
                scores.append(float(sum(picked)))
        return scores


def loglikelihood(items: Sequence[SwapItem], scorer: Scorer) -> list[Result]:
    """One query per item: correct when the right completion is strictly more likely (a tie is wrong: it would
    otherwise favour whichever position a tie-break picks)."""
    scores = scorer([(it.prompt, c) for it in items for c in it.classes])
    results = []
    for index, it in enumerate(items):
        pair = scores[2 * index:2 * index + 2]
        right, wrong = pair[it.answer_index], pair[1 - it.answer_index]
        results.append(Result(it.item.item_id, 0, right > wrong, right - wrong,
                              {"logprobs": pair, "answer_index": it.answer_index,
                               "picked": 0 if pair[0] > pair[1] else 1 if pair[1] > pair[0] else None}))
    return results


# ---- generate


def choice_messages(prompt: str, first: str, second: str) -> list[dict]:
    user = (f"The program so far:\n```python\n{prompt}\n```\n\nOption 1:\n```python\n{first}\n```\n\n"
            f"Option 2:\n```python\n{second}\n```\n\nWhich option is the correct continuation? Answer 1 or 2.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_choice(text: str | None) -> int | None:
    """The first standalone 1 or 2 of the answer; None when there is none."""
    found = re.search(r"(?<![\w.])([12])(?!\w|\.\d)", text or "")
    return int(found.group(1)) if found else None


def generate(items: Sequence[SwapItem], backend, config: EvalConfig, adapter: str | None = None) -> list[Result]:
    """Two queries per item: query 0 shows the classes in file order, query 1 swapped."""
    from sinq.agents.llm import LLMRequest

    queries = []
    for it in items:
        first, second = it.classes
        queries.append((it, 0, choice_messages(it.prompt, first, second), it.answer_index + 1))
        queries.append((it, 1, choice_messages(it.prompt, second, first), 2 - it.answer_index))
    requests = [LLMRequest(messages=messages, temperature=config.temperature, top_p=config.top_p,
                           max_tokens=config.choice_max_tokens, seed=config.seed, adapter=adapter)
                for _, _, messages, _ in queries]
    answers = answers_or_fail(backend, requests)
    results = []
    for (it, order, _, right), answer in zip(queries, answers, strict=True):
        text = answer.texts[0] if answer.texts else None
        picked = parse_choice(text)
        results.append(Result(it.item.item_id, order, picked == right, float(picked == right),
                              {"order": "file" if order == 0 else "swapped", "right_option": right,
                               "picked": picked, "answer": (text or "")[:200]}))
    return results


def metrics_of(results: Sequence[Result], mode: str, config: EvalConfig) -> dict[str, dict]:
    correct = sum(1 for r in results if r.correct)
    metrics = {"accuracy": rate(correct, len(results), config.confidence)}
    if mode == "generate":
        by_item: dict[str, list[bool]] = {}
        for r in results:
            by_item.setdefault(r.item_id, []).append(bool(r.correct))
        metrics["both_orders"] = rate(sum(all(v) for v in by_item.values()), len(by_item), config.confidence)
        answered = [r for r in results if r.detail.get("picked") is not None]
        metrics["answered"] = rate(len(answered), len(results), config.confidence)
        metrics["picks_option_1"] = rate(sum(1 for r in answered if r.detail["picked"] == 1), len(answered),
                                         config.confidence)
    return metrics


def evaluate(path: Path, mode: str = "loglikelihood", config: EvalConfig | None = None, *, scorer: Scorer | None = None,
             backend=None, model: str | None = None, adapter: str | None = None, limit: int | None = None,
             role: str | None = None) -> EvalRun:
    """One run over the file: ``scorer`` for loglikelihood (default: the model through transformers), ``backend``
    (any LLM backend) for generate."""
    config = config or EvalConfig()
    if mode not in MODES:
        raise EvalError(f"unknown mode {mode!r} ({' | '.join(MODES)})")
    loaded = read(path, limit)
    items = loaded.items
    if mode == "loglikelihood" and scorer is None:
        if model is None:
            raise EvalError("loglikelihood needs a local model (--model PATH, or an agent with one)")
        scorer = TransformersScorer(model, adapter, batch_size=config.batch_size)
    clock = Clock()  # scoring only: loading the model is not the suite's cost
    if mode == "loglikelihood":
        assert scorer is not None
        results = loglikelihood(items, scorer)
        sampling: dict = {}
    else:
        if backend is None:
            raise EvalError("generate needs a model (--model / --agent)")
        results = generate(items, backend, config, adapter)
        sampling = {"temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.choice_max_tokens}
    positions = sorted({it.answer_index for it in items})
    detail = {"file": str(path), "answer_positions": positions, "duplicates": loaded.duplicates,
              "conflicting_duplicates": loaded.conflicting, **clock.figures(len(items), len(results))}
    if len(positions) == 1 and mode == "loglikelihood":
        detail["warning"] = (f"every row has answer_index {positions[0]}: a model that prefers one position "
                             "scores high without skill; compare with a file holding both positions")
    return EvalRun(SUITE, SUITE_VERSION, model, adapter, mode, [it.item for it in items], results,
                   metrics_of(results, mode, config), role=role, sampling=sampling, seeds={"sampling": config.seed},
                   detail=detail)
