"""The OpenAI-compatible backend against a local fault injector (a test double for a real server that misbehaves:
429 with Retry-After, 500s, dropped connections, slow answers, servers that refuse n). Faults never lose a request."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from sinq.agents.llm import LLMRequest
from sinq.agents.openai_backend import OpenAIBackend


class FaultInjector(BaseHTTPRequestHandler):
    calls: ClassVar[Counter] = Counter()
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        scenario = body["messages"][-1]["content"]
        with self.lock:
            self.calls[scenario] += 1
            attempt = self.calls[scenario]
        n = body.get("n", 1)
        if scenario == "429" and attempt == 1:
            return self._reply(429, {"error": "slow down"}, {"Retry-After": "0.3"})
        if scenario == "500" and attempt <= 2:
            return self._reply(500, {"error": "boom"})
        if scenario == "drop" and attempt == 1:
            self.connection.close()
            return None
        if scenario == "slow" and attempt == 1:
            time.sleep(1.5)
        if scenario == "no-n" and n > 1:
            return self._reply(400, {"error": "n must be 1 for this model"})
        if scenario == "fatal":
            return self._reply(400, {"error": "bad request"})
        if scenario == "model":
            if body["model"] not in ("base", "round-3"):
                return self._reply(404, {"error": f"The model `{body['model']}` does not exist."})
            return self._reply(200, {"choices": [{"message": {"content": body["model"]}, "finish_reason": "stop"}]})
        choices = [{"message": {"content": f"{scenario} {attempt}.{i}"}, "finish_reason": "stop"} for i in range(n)]
        return self._reply(200, {"choices": choices, "usage": {"prompt_tokens": 5, "completion_tokens": 3 * n}})

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                           **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    FaultInjector.calls = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FaultInjector)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def request(scenario: str, n: int = 2) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": scenario}], n=n, seed=1)


def test_faults_are_retried_and_nothing_is_lost(server: str) -> None:
    backend = OpenAIBackend(server, "tiny", timeout_s=0.8, backoff_s=0.05, max_retries=4, concurrency=4)
    scenarios = ["ok", "429", "500", "drop", "slow"]
    started = time.perf_counter()
    results = backend.generate([request(s) for s in scenarios])
    assert [r.error for r in results] == [None] * len(scenarios)
    assert all(len(r.texts) == 2 and all(t for t in r.texts) for r in results)
    assert FaultInjector.calls["500"] == 3 and FaultInjector.calls["429"] == 2
    assert time.perf_counter() - started >= 0.3  # Retry-After was honoured
    assert results[0].prompt_tokens == 5 and results[0].completion_tokens == 6
    assert results[0].request_key == request("ok").key() != request("ok", n=3).key()


def test_a_server_without_n_gets_one_request_per_completion(server: str) -> None:
    backend = OpenAIBackend(server, "tiny", backoff_s=0.01)
    result = backend.generate([request("no-n", n=3)])[0]
    assert result.error is None and len(result.texts) == 3
    assert backend.supports_n is False


def test_a_permanent_error_is_recorded_not_raised(server: str) -> None:
    backend = OpenAIBackend(server, "tiny", backoff_s=0.01, max_retries=3)
    good, bad = backend.generate([request("ok"), request("fatal")])
    assert good.error is None and len(good.texts) == 2
    assert bad.error is not None and "HTTP 400" in bad.error and bad.texts == []
    assert FaultInjector.calls["fatal"] == 1


def test_a_dead_server_is_an_error_per_request() -> None:
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "tiny", timeout_s=0.5, backoff_s=0.01, max_retries=1)
    results = backend.generate([request("ok"), request("ok")])
    assert all(r.error and "gave up" in r.error for r in results)


def test_cache_never_pays_twice_and_replay_reads_only(server: str, tmp_path) -> None:
    from sinq.agents.cache import CachedBackend
    from sinq.warehouse.store import Warehouse

    warehouse = Warehouse(tmp_path / "w.duckdb")
    backend = CachedBackend(OpenAIBackend(server, "tiny", backoff_s=0.01), warehouse, agent_id="alice-test",
                            prompt_version="alice-v1", run_id="r1")
    first = backend.generate([request("ok"), request("fatal")])
    again = backend.generate([request("ok"), request("ok", n=1)])
    assert FaultInjector.calls["ok"] == 2  # the same request is served from the cache; n=1 is another request
    assert again[0].cache_hit and again[0].texts == first[0].texts
    assert not again[1].cache_hit and len(again[1].texts) == 1
    assert first[1].error is not None
    _, rows = warehouse.query("SELECT prompt_version, agent_id, n FROM llm_requests ORDER BY n")
    assert rows == [("alice-v1", "alice-test", 1), ("alice-v1", "alice-test", 2)]  # the failed request: not cached
    replay = CachedBackend(None, warehouse, agent_id="alice-test", replay=True)
    hit, miss = replay.generate([request("ok"), request("never-asked")])
    assert hit.cache_hit and hit.texts == first[0].texts
    assert miss.error is not None and "replay" in miss.error


def test_an_adapter_is_asked_for_by_its_served_name_never_silently_the_base(server: str) -> None:
    """`vllm serve BASE --enable-lora --lora-modules round-3=/adapters/round-3`: a request with that adapter names
    ``round-3``; an adapter the server does not serve is that request's error, not the base model's answer."""
    backend = OpenAIBackend(server, "base", max_backoff_s=0.05)
    served, plain, unknown = backend.generate([
        LLMRequest(messages=[{"role": "user", "content": "model"}], n=1, adapter="/adapters/round-3/"),
        LLMRequest(messages=[{"role": "user", "content": "model"}], n=1),
        LLMRequest(messages=[{"role": "user", "content": "model"}], n=1, adapter="/adapters/other")])
    assert served.texts == ["round-3"] and plain.texts == ["base"]
    assert unknown.error is not None and "404" in unknown.error and not unknown.texts
