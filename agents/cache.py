"""A response cache in the warehouse (llm_requests / llm_responses), keyed by the request's content hash: a rerun
or a resumed run never pays twice, and replay mode answers only from the cache (no model needed)."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import ClassVar

from sinq.agents.llm import LLMRequest, LLMResult
from sinq.warehouse import queries
from sinq.warehouse.store import Warehouse


def cached(warehouse: Warehouse, keys: list[str]) -> dict[str, list[tuple]]:
    """Stored choices per request key: (choice_index, text, finish_reason, prompt_tokens, completion_tokens)."""
    if not keys or not warehouse.path.exists():
        return {}
    rows: dict[str, list[dict]] = {}
    for row in queries.cached_responses(warehouse, keys):
        rows.setdefault(row["request_id"], []).append(row)
    return {key: _choices(choices) for key, choices in rows.items()}


def _choices(responses: list[dict]) -> list[tuple]:
    return [(r["choice_index"], r["text"], r["finish_reason"], r["prompt_tokens"], r["completion_tokens"])
            for r in sorted(responses, key=lambda r: r["choice_index"])]


class CarriedResponses:
    """The response cache carried to a worker that cannot open the warehouse (a Dask worker on another host): the
    flow's process looked this batch's requests up before sending it, and what the model answers fresh is kept as
    rows the flow stores with the batch's results, in the same write. Fresh answers are also remembered in the
    worker's process (bounded), so a retried batch — its sandbox failed after the model answered, nothing was
    stored — reuses them and still brings their rows back."""

    RECENT_MAX = 20_000
    _recent: ClassVar[OrderedDict[str, tuple[dict, list[dict]]]] = OrderedDict()
    _recent_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, found: dict[str, list[tuple]] | None = None) -> None:
        self.found = dict(found or {})
        self.rows: dict[str, list[dict]] = {}

    def lookup(self, keys: list[str]) -> dict[str, list[tuple]]:
        out = {key: self.found[key] for key in keys if key in self.found}
        with self._recent_lock:
            recent = {key: self._recent[key] for key in keys if key not in out and key in self._recent}
        for key, (request, responses) in recent.items():
            self._keep({"llm_requests": [request], "llm_responses": responses})
            out[key] = _choices(responses)
        return out

    def store(self, batch: dict[str, list[dict]]) -> None:
        self._keep(batch)
        responses: dict[str, list[dict]] = {}
        for row in batch.get("llm_responses", []):
            responses.setdefault(row["request_id"], []).append(row)
        by_key = {r["request_id"]: (r, responses.get(r["request_id"], [])) for r in batch.get("llm_requests", [])}
        with self._recent_lock:
            self._recent.update(by_key)
            while len(self._recent) > self.RECENT_MAX:
                self._recent.popitem(last=False)

    def _keep(self, batch: dict[str, list[dict]]) -> None:
        for table, rows in batch.items():
            self.rows.setdefault(table, []).extend(rows)


class CachedBackend:
    """``warehouse`` is where the cache lives: the warehouse itself, or the rows a batch carries
    (``CarriedResponses``)."""

    def __init__(self, backend, warehouse: Warehouse | CarriedResponses, agent_id: str,
                 prompt_version: str | None = None, run_id: str | None = None, replay: bool = False) -> None:
        self.backend = backend
        self.warehouse = warehouse
        self.agent_id = agent_id
        self.prompt_version = prompt_version
        self.run_id = run_id
        self.replay = replay
        self.name = f"cached:{getattr(backend, 'name', 'replay')}"

    def _lookup(self, keys: list[str]) -> dict[str, list[tuple]]:
        if isinstance(self.warehouse, CarriedResponses):
            return self.warehouse.lookup(keys)
        return cached(self.warehouse, keys)

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        keys = [r.key() for r in requests]
        cached = self._lookup(sorted(set(keys)))
        results: dict[int, LLMResult] = {}
        misses = []
        for index, (request, key) in enumerate(zip(requests, keys, strict=True)):
            rows = cached.get(key, [])
            if len(rows) >= request.n:
                rows = rows[: request.n]
                results[index] = LLMResult(request_key=key, texts=[r[1] for r in rows],
                                           finish_reasons=[r[2] for r in rows], prompt_tokens=rows[0][3] or 0,
                                           completion_tokens=sum(r[4] or 0 for r in rows), cache_hit=True)
            elif self.replay:
                results[index] = LLMResult(request_key=key, texts=[], finish_reasons=[],
                                           error="not in the response cache (replay mode)")
            else:
                misses.append(index)
        if misses:
            fresh = self.backend.generate([requests[i] for i in misses])
            self._store([requests[i] for i in misses], fresh)
            for index, result in zip(misses, fresh, strict=True):
                results[index] = result
        return [results[i] for i in range(len(requests))]

    def _store(self, requests: list[LLMRequest], results: list[LLMResult]) -> None:
        now = datetime.now(UTC)
        batch: dict[str, list[dict]] = {"llm_requests": [], "llm_responses": []}
        for request, result in zip(requests, results, strict=True):
            if result.error is not None:
                continue
            sampling = {"temperature": request.temperature, "top_p": request.top_p, "max_tokens": request.max_tokens,
                        "model": request.model, "adapter": request.adapter}
            batch["llm_requests"].append({
                "request_id": result.request_key, "agent_id": self.agent_id, "prompt_version": self.prompt_version,
                "messages": json.dumps(request.messages), "sampling": json.dumps(sampling), "seed": request.seed,
                "n": request.n, "json_schema": json.dumps(request.json_schema) if request.json_schema else None,
                "run_id": self.run_id, "created_at": now})
            for choice, (text, finish) in enumerate(zip(result.texts, result.finish_reasons, strict=True)):
                batch["llm_responses"].append({
                    "response_id": f"{result.request_key}:{choice}", "request_id": result.request_key,
                    "choice_index": choice, "text": text, "finish_reason": finish,
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens // max(1, len(result.texts)),
                    "latency_s": result.latency_s, "cache_hit": False, "run_id": self.run_id, "created_at": now})
        if batch["llm_requests"]:
            self.warehouse.store(batch)
