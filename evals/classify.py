"""Binary code classification (the paper's vulnerability detection: CodeXGLUE defect detection, 2,732 items; PySecDB,
4,042): the model sees one piece of code and answers a Yes/No question about it; accuracy, and precision, recall and
F1 of the positive class.

Data: a local JSONL (``.jsonl``/``.json``, also a JSON array) or Parquet file, or ``hf:NAME[:SPLIT]`` from the local
Hugging Face cache only (offline: nothing is downloaded). A column map names the code, the label and (optionally) an
id column, and which label values are positive; a preset fills it, explicit flags override it.

``greedy``: one answer per item at temperature 0. ``majority``: ``classify_votes`` answers sampled at the
``[eval]`` temperature, the more frequent Yes/No wins and a tie counts wrong. Either way every item is one query
(query_index 0), so two runs on the same items compare with McNemar. An answer with no Yes/No in it is wrong, never
dropped: an unparsable answer (or a tie) counts as the wrong class, fn on a positive item and fp on a negative one,
so accuracy = (tp + tn) / n holds."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sinq.evals.common import Clock, EvalError, EvalRun, Item, Result, answers_or_fail, offline, rate
from sinq.evals.config import EvalConfig
from sinq.game.stats import bootstrap_f1

SUITE = "classify"
SUITE_VERSION = "1"
MODES = ("greedy", "majority")
SYSTEM = ("You review code. Read the code and answer the question about it with one word: Yes or No.")


@dataclass(frozen=True)
class Layout:
    """Where a row keeps its code and label, which label values are positive, and what the model is asked.
    ``negative`` None: every label value that is not positive is negative."""

    code: str = "code"
    label: str = "label"
    id: str | None = None
    positive: frozenset[str] = frozenset({"1", "true", "yes"})
    negative: frozenset[str] | None = frozenset({"0", "false", "no"})
    question: str = "Does this code contain a security vulnerability? Answer Yes or No."
    language: str = ""
    id_required: bool = False
    """An id column named by a flag must be on every row; a preset's is used where present."""


PRESETS: dict[str, Layout] = {
    # CodeXGLUE defect detection (Devign): {"func", "target": 0/1, "idx"}; the Hugging Face copy
    # (code_x_glue_cc_defect_detection) stores target as a bool, hence "true"/"false" too.
    "devign": Layout(code="func", label="target", id="idx", positive=frozenset({"1", "true"}),
                     negative=frozenset({"0", "false"}), language="c",
                     question="Does this C function contain a security vulnerability? Answer Yes or No."),
    # PySecDB (ICSME'23; dataset card of sunlab/PySecDB): {"id", "label": "security" | "non-security", "content":
    # the patch, "source", "CVE-ID"}. The card documents these keys; the gated files themselves were not seen here.
    "pysecdb": Layout(code="content", label="label", id="id", positive=frozenset({"security"}),
                      negative=frozenset({"non-security"}), language="diff",
                      question="Does this Python commit patch fix a security vulnerability? Answer Yes or No."),
}


def label_key(value: object) -> str | None:
    """A label as the column map compares it: lower-cased text, 1.0 as 1, True as true; None when empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip().lower()
    return text or None


def layout_of(preset: str | None = None, *, code_column: str | None = None, label_column: str | None = None,
              id_column: str | None = None, positive: Sequence[str] | None = None,
              negative: Sequence[str] | None = None, question: str | None = None) -> Layout:
    """The preset's layout (or the generic one) with each given flag on top. Positive values given without negative
    ones make every other label negative: the preset's negatives belong to its positives."""
    if preset is not None and preset not in PRESETS:
        raise EvalError(f"unknown preset {preset!r} ({' | '.join(PRESETS)})")
    layout = PRESETS[preset] if preset else Layout()
    update: dict = {}
    if code_column:
        update["code"] = code_column
    if label_column:
        update["label"] = label_column
    if id_column:
        update.update(id=id_column, id_required=True)
    if positive:
        update["positive"] = frozenset(_keys(positive, "--positive"))
        update["negative"] = None
    if negative:
        update["negative"] = frozenset(_keys(negative, "--negative"))
    if question:
        update["question"] = question
    layout = replace(layout, **update)
    if layout.negative is not None and layout.positive & layout.negative:
        raise EvalError(f"label values both positive and negative: {sorted(layout.positive & layout.negative)}")
    return layout


def _keys(values: Sequence[str], flag: str) -> list[str]:
    keys = [label_key(v) for v in values]
    if any(k is None for k in keys):
        raise EvalError(f"{flag} needs a non-empty value")
    return [k for k in keys if k is not None]


@dataclass
class ClassifyItem:
    code: str
    label: str
    positive: bool
    row: str
    item: Item


@dataclass
class Loaded:
    items: list[ClassifyItem]
    source: str
    duplicates: int = 0
    conflicting: int = 0
    """Rows whose code an earlier row already had (one item per content hash, the first row's label kept), and
    those of them with the other class."""
    labels: dict[str, int] = field(default_factory=dict)


def load(source: str | Path, layout: Layout, limit: int | None = None) -> Loaded:
    """The items of a file or cached dataset; a row that does not fit the layout stops the evaluation, naming it."""
    where, rows = _rows(str(source))
    loaded = Loaded([], where)
    seen: dict[str, bool] = {}
    for place, row in rows:
        if limit is not None and len(loaded.items) >= limit:
            break
        item = _item(row, place, layout, where)
        key = label_key(row.get(layout.label)) or ""
        loaded.labels[key] = loaded.labels.get(key, 0) + 1
        if item.item.item_id in seen:
            loaded.duplicates += 1
            loaded.conflicting += seen[item.item.item_id] != item.positive
            continue
        seen[item.item.item_id] = item.positive
        loaded.items.append(item)
    if not loaded.items:
        raise EvalError(f"{where} holds no rows")
    return loaded


def _item(row: dict, place: str, layout: Layout, where: str) -> ClassifyItem:
    missing = [c for c in (layout.code, layout.label) if c not in row]
    if layout.id_required and layout.id not in row:
        missing.append(str(layout.id))
    if missing:
        raise EvalError(f"{place}: no column {', '.join(map(repr, missing))} (the row has "
                        f"{', '.join(map(repr, list(row)[:12]))})", hint="name the columns: --code-column, "
                        "--label-column, --id-column, or a --preset")
    code = row[layout.code]
    if not isinstance(code, str) or not code.strip():
        raise EvalError(f"{place}: column {layout.code!r} is not a non-empty string")
    label = label_key(row[layout.label])
    if label is None:
        raise EvalError(f"{place}: column {layout.label!r} is empty")
    if label in layout.positive:
        positive = True
    elif layout.negative is None or label in layout.negative:
        positive = False
    else:
        known = sorted(layout.positive | (layout.negative or frozenset()))
        raise EvalError(f"{place}: label {row[layout.label]!r} is in neither class (known: {', '.join(known)})",
                        hint="map it with --positive VALUE (and --negative VALUE)")
    ident = row.get(layout.id) if layout.id else None
    short = where if where.startswith("hf:") else Path(where).name
    name = f"{short}:{ident}" if ident is not None else place.replace(where, short, 1)
    return ClassifyItem(code, label, positive, name, Item(SUITE, code, name))


def _rows(source: str) -> tuple[str, Iterator[tuple[str, dict]]]:
    """(where, rows), each row with its place for messages: ``file:LINE`` (JSONL) or ``file row N`` (0-based)."""
    if source.startswith("hf:"):
        name, _, split = source[3:].partition(":")
        if not name:
            raise EvalError("hf: needs a dataset name (hf:NAME[:SPLIT])")
        return source, _numbered(_hf(name, split or "train"), f"{source} row")
    path = Path(source)
    if not path.exists():
        raise EvalError(f"{path} does not exist")
    if not path.is_file():
        raise EvalError(f"{path} is not a file")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        except (OSError, ValueError) as exc:
            raise EvalError(f"{path}: not a readable Parquet file: {exc}") from exc
        return str(path), _numbered(table.to_pylist(), f"{path} row")
    if path.suffix not in (".jsonl", ".json", ".ndjson"):
        raise EvalError(f"{path}: give a .jsonl, .json or .parquet file, or hf:NAME")
    return str(path), _json_rows(path)


def _numbered(rows: Iterable[dict], prefix: str) -> Iterator[tuple[str, dict]]:
    for number, row in enumerate(rows):
        yield f"{prefix} {number}", dict(row)


def _json_rows(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EvalError(f"{path} is not UTF-8 text (byte {exc.start}): not a JSON file") from None
    if text.lstrip().startswith("["):  # CodeXGLUE ships Devign as one JSON array (function.json)
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise EvalError(f"{path}: not valid JSON: {exc}") from exc
        for number, row in enumerate(rows):
            if not isinstance(row, dict):
                raise EvalError(f"{path} row {number}: not an object")
            yield f"{path} row {number}", row
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise EvalError(f"{path}:{number}: not a JSON object: {exc}") from exc
        if not isinstance(row, dict):
            raise EvalError(f"{path}:{number}: not a JSON object")
        yield f"{path}:{number}", row


def _hf(name: str, split: str) -> Iterable[dict]:
    offline()
    try:
        import datasets
    except ImportError as exc:
        raise EvalError("the datasets package is needed for hf: data") from exc
    try:
        return datasets.load_dataset(name, split=split)
    except Exception as exc:  # datasets raises many kinds for a dataset that is not in the local cache
        raise EvalError(f"hf:{name} (split {split}) is not in the local Hugging Face cache: nothing is downloaded "
                        f"at run time ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
                        hint="download it once beforehand, or export it to JSONL/Parquet and pass --file") from exc


# ---- asking


def messages(item: ClassifyItem, layout: Layout) -> list[dict]:
    user = f"```{layout.language}\n{item.code.rstrip()}\n```\n\n{layout.question}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


_ANSWER = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_THINKING = re.compile(r"<think>.*?(</think>|$)", re.IGNORECASE | re.DOTALL)


def parse_answer(text: str | None) -> bool | None:
    """The first standalone yes/no word (a reasoning block skipped): True for yes, False for no, None for neither."""
    found = _ANSWER.search(_THINKING.sub(" ", text or ""))
    return None if found is None else found.group(1).lower() == "yes"


def vote(answers: Sequence[bool | None]) -> tuple[bool | None, str | None]:
    """(the prediction, why there is none): the more frequent parsed answer; "unparsable" when no answer parsed,
    "tie" when yes and no are as frequent."""
    yes, no = sum(1 for a in answers if a is True), sum(1 for a in answers if a is False)
    if yes == no:
        return None, "unparsable" if yes == 0 else "tie"
    return yes > no, None


def ask(items: Sequence[ClassifyItem], layout: Layout, backend, mode: str, config: EvalConfig,
        adapter: str | None = None) -> list[Result]:
    """One request per item (``classify_votes`` samples in majority mode, one greedy answer otherwise)."""
    from sinq.agents.llm import LLMRequest

    votes = config.classify_votes if mode == "majority" else 1
    temperature = config.temperature if mode == "majority" else 0.0
    requests = [LLMRequest(messages=messages(it, layout), n=votes, temperature=temperature, top_p=config.top_p,
                           max_tokens=config.classify_max_tokens, seed=config.seed, adapter=adapter) for it in items]
    answers = answers_or_fail(backend, requests)
    results = []
    for it, answer in zip(items, answers, strict=True):
        texts = list(answer.texts or [])[:votes] or [None]
        parsed = [parse_answer(t) for t in texts]
        predicted, reason = vote(parsed)
        correct = predicted == it.positive
        detail: dict = {"row": it.row, "label": it.label, "positive": it.positive, "predicted": predicted,
                        "answer": (texts[0] or "")[:200]}
        if mode == "majority":
            detail["votes"] = parsed
            detail["answers"] = [(t or "")[:80] for t in texts]
        if reason:
            detail["reason"] = reason
        share = sum(1 for p in parsed if p == it.positive) / len(parsed)
        results.append(Result(it.item.item_id, 0, correct, share if mode == "majority" else float(correct),
                              detail))
    return results


# ---- scoring


def confusion(results: Sequence[Result]) -> dict[str, int]:
    """tp/fp/tn/fn with a missing prediction (unparsable, tie) as the wrong class."""
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for r in results:
        positive = bool(r.detail["positive"])
        said = r.detail["predicted"] if r.detail["predicted"] is not None else not positive
        counts[("t" if said == positive else "f") + ("p" if said else "n")] += 1
    return counts


def metrics_of(results: Sequence[Result], config: EvalConfig) -> tuple[dict[str, dict], dict[str, int]]:
    c = confusion(results)
    n = len(results)
    truth = [bool(r.detail["positive"]) for r in results]
    said = [r.detail["predicted"] if r.detail["predicted"] is not None else not t for r, t in zip(results, truth,
                                                                                                    strict=True)]
    value, low, high = bootstrap_f1(truth, said, config.bootstrap_resamples, config.confidence, config.seed)
    f1 = {"value": None if math.isnan(value) else value, "low": 0.0 if math.isnan(low) else low,
          "high": 1.0 if math.isnan(high) else high, "n": n, "interval": "bootstrap over items",
          "resamples": config.bootstrap_resamples, "seed": config.seed}
    answered = sum(1 for r in results if r.detail["predicted"] is not None)
    metrics = {"accuracy": rate(c["tp"] + c["tn"], n, config.confidence), "f1": f1,
               "precision": rate(c["tp"], c["tp"] + c["fp"], config.confidence),
               "recall": rate(c["tp"], c["tp"] + c["fn"], config.confidence),
               "answered": rate(answered, n, config.confidence)}
    return metrics, c


def evaluate(source: str | Path, layout: Layout | None = None, mode: str = "greedy", config: EvalConfig | None = None,
             *, backend, model: str | None = None, adapter: str | None = None, limit: int | None = None,
             role: str | None = None, preset: str | None = None, loaded: Loaded | None = None) -> EvalRun:
    """One run over the file (or ``loaded``, the items already read) with any LLM backend."""
    config = config or EvalConfig()
    if mode not in MODES:
        raise EvalError(f"unknown mode {mode!r} ({' | '.join(MODES)})")
    layout = layout or (PRESETS[preset] if preset else Layout())
    loaded = loaded or load(source, layout, limit)
    if backend is None:
        raise EvalError("classify needs a model (--model / --agent)")
    clock = Clock()
    results = ask(loaded.items, layout, backend, mode, config, adapter)
    metrics, counts = metrics_of(results, config)
    positives = sum(1 for it in loaded.items if it.positive)
    detail: dict = {
        "source": loaded.source, "preset": preset, "columns": {"code": layout.code, "label": layout.label,
                                                               "id": layout.id},
        "positive_values": sorted(layout.positive),
        "negative_values": sorted(layout.negative) if layout.negative is not None else "every other value",
        "question": layout.question, **counts, "positives": positives, "negatives": len(loaded.items) - positives,
        "unparsable": sum(1 for r in results if r.detail.get("reason") == "unparsable"),
        "labels": loaded.labels, "duplicates": loaded.duplicates, "conflicting_duplicates": loaded.conflicting,
        **clock.figures(len(loaded.items), len(results))}
    sampling: dict = {"temperature": 0.0, "max_tokens": config.classify_max_tokens}
    if mode == "majority":
        detail["ties"] = sum(1 for r in results if r.detail.get("reason") == "tie")
        detail["tie_rule"] = "a tie between Yes and No votes (or no parsable vote) counts wrong"
        sampling = {"temperature": config.temperature, "top_p": config.top_p, "votes": config.classify_votes,
                    "max_tokens": config.classify_max_tokens}
        if config.temperature == 0:
            detail["warning"] = "majority at temperature 0: the votes of an item are all the same greedy answer"
    if positives in (0, len(loaded.items)):
        detail["warning"] = (f"every item is {'positive' if positives else 'negative'}: a constant answer scores "
                             "high without skill")
    return EvalRun(SUITE, SUITE_VERSION, model, adapter, mode, [it.item for it in loaded.items], results, metrics,
                   role=role, sampling=sampling, seeds={"sampling": config.seed, "bootstrap": config.seed},
                   detail=detail)
