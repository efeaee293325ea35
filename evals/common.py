"""What every suite shares: a per-query outcome, the run record a suite returns, metric shapes with intervals, and
storing a run (results in ``eval_runs``/``eval_results``, items in the decontamination list ``eval_items``)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sinq.game.errors import SinqError
from sinq.game.stats import wilson
from sinq.training.decontam import make_item, register_items
from sinq.warehouse.evals import store_eval
from sinq.warehouse.records import content_id
from sinq.warehouse.store import Warehouse

T = TypeVar("T")


class EvalError(SinqError):
    """An evaluation cannot run as asked (a missing file, an unusable model, a malformed samples file): exit 2."""

    exit_code = 2


@dataclass
class Item:
    """One thing a suite measures on; ``item_id`` is the decontamination list's content id of (suite, text)."""

    suite: str
    text: str
    origin: str
    item_id: str = ""
    problem_id: str | None = None
    """The warehouse problem it is (HumanEval tasks): a training set that used that problem touched the item."""
    register: bool = True
    """Goes into the decontamination list. False for a seed source's train-split problems (HumanEval's 125): they
    are measured on request (--all) but registering them would make every training set drop their pairs."""

    def __post_init__(self) -> None:
        self.item_id = self.item_id or make_item(self.suite, self.text, self.origin).item_id


@dataclass
class Result:
    """One scored query: an item may be asked several times (both orders, n samples), ``query_index`` tells them
    apart so that two runs line up query by query."""

    item_id: str
    query_index: int
    correct: bool | None
    score: float | None = None
    detail: dict = field(default_factory=dict)


@dataclass
class EvalRun:
    suite: str
    suite_version: str
    model: str | None
    adapter: str | None
    mode: str
    items: list[Item]
    results: list[Result]
    metrics: dict[str, dict]
    role: str | None = None
    sampling: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    eval_id: str = ""

    @property
    def n(self) -> int:
        """Scored queries (an identifier-swap item asked in both orders counts twice)."""
        return sum(1 for r in self.results if r.correct is not None)

    def items_hash(self) -> str:
        return hashlib.sha256("\n".join(sorted(i.item_id for i in self.items)).encode()).hexdigest()

    def summary(self) -> dict:
        """The ``--json`` shape: at least eval_id, suite, model, adapter, n and metrics with value/low/high."""
        return {"eval_id": self.eval_id, "suite": self.suite, "suite_version": self.suite_version,
                "model": self.model, "adapter": self.adapter, "role": self.role, "mode": self.mode, "n": self.n,
                "items": len(self.items), "metrics": self.metrics, "detail": self.detail}


def distinct(things: Sequence[T], key: Callable[[T], str]) -> tuple[list[T], int]:
    """(the first of each key, in order; how many repeats were left out). Results are stored by (item, query), so
    a suite scores each distinct item once: two rows of one item would be counted twice and stored once."""
    seen: set[str] = set()
    kept = []
    for thing in things:
        k = key(thing)
        if k not in seen:
            seen.add(k)
            kept.append(thing)
    return kept, len(things) - len(kept)


def offline() -> None:
    """Nothing is downloaded at run time: set before transformers or datasets are first imported (later settings
    are not seen by huggingface_hub), and a local path is then never looked up on the hub either."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def answers_or_fail(backend, requests: list, what: str = "queries") -> list:
    """The backend's answers to every request; one failed request stops the run (a figure measured on the answers
    that happened to come back would not be the model's)."""
    answers = backend.generate(requests)
    failed = [a.error for a in answers if a.error]
    if failed:
        raise EvalError(f"the model failed on {len(failed)} of {len(requests)} {what}: {failed[0]}")
    return answers


def rate(k: int, n: int, confidence: float = 0.95) -> dict:
    """A rate with its Wilson interval; nothing measured (n = 0) is a null value, so --json stays valid JSON."""
    value, low, high = wilson(k, n, confidence)
    return {"value": value if n else None, "low": low, "high": high, "k": k, "n": n, "interval": "wilson"}


class Clock:
    """Items per second of a suite, for the report (stored in the run's detail)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def figures(self, items: int, queries: int) -> dict:
        elapsed = time.perf_counter() - self.started
        return {"elapsed_s": round(elapsed, 3), "items_per_s": round(items / elapsed, 3) if elapsed else None,
                "queries_per_s": round(queries / elapsed, 3) if elapsed else None}


def record(warehouse: Warehouse, run: EvalRun, code_version: str | None = None) -> str:
    """Store the run with every result, register its items for decontamination, and return its eval id (fresh per
    run: the same model evaluated twice is two runs). Items a registered training set touched are counted in the
    run's detail (``contaminated_items``, with the sets), so a figure measured partly on trained items says so."""
    from sinq.training.decontam import contaminated_items

    if not warehouse.path.exists():
        warehouse.store({})  # a fresh file: the contamination check below reads it before the run is stored
    keys = {(r.item_id, r.query_index) for r in run.results}
    if len(keys) != len(run.results):  # stored equals reported: a suite must score each (item, query) once
        raise RuntimeError(f"{run.suite}: {len(run.results) - len(keys)} results repeat an (item, query) key; "
                           "they would be counted but not stored")
    run.eval_id = run.eval_id or content_id("eval", run.suite, run.model, run.adapter, run.mode, run.items_hash(),
                                            time.time_ns())[:16]
    items = _unique(run.items)
    register_items(warehouse, [make_item(i.suite, i.text, i.origin, i.problem_id) for i in items if i.register])
    problem_ids = [i.problem_id for i in items if i.problem_id]
    hits = contaminated_items(warehouse, item_ids=[i.item_id for i in items if i.register],
                              problem_ids=problem_ids or None)
    hit_items = {h["item_id"] for h in hits if h["item_id"]}
    hit_problems = {h["problem_id"] for h in hits if h["problem_id"]}
    touched = sorted(i.item_id for i in items if i.item_id in hit_items or i.problem_id in hit_problems)
    run.detail["contaminated_items"] = len(touched)
    if touched:
        run.detail["contaminated_sets"] = sorted({h["snapshot_id"] for h in hits})
        run.detail["contaminated_item_ids"] = touched[:50]
    store_eval(warehouse, {
        "eval_id": run.eval_id, "suite": run.suite, "suite_version": run.suite_version, "model": run.model,
        "adapter": run.adapter, "role": run.role, "mode": run.mode, "sampling": run.sampling, "seeds": run.seeds,
        "n": run.n, "metrics": run.metrics, "items_hash": run.items_hash(), "code_version": code_version,
        "detail": run.detail,
    }, [{"item_id": r.item_id, "query_index": r.query_index, "correct": r.correct, "score": r.score,
         "detail": r.detail} for r in run.results])
    return run.eval_id


def _unique(items: Sequence[Item]) -> list[Item]:
    seen: dict[str, Item] = {}
    for item in items:
        seen.setdefault(item.item_id, item)
    return list(seen.values())
