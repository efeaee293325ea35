"""Any OpenAI-compatible chat server (vLLM ``serve``, hosted APIs): async with a concurrency cap, retries with
exponential backoff and jitter that honour ``Retry-After``, per-request timeouts, and servers that refuse ``n``."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx

from sinq.agents.llm import LLMRequest, LLMResult, chat_body

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def served_name(adapter: str) -> str:
    """The model name a served LoRA adapter answers to: its folder's name, as in ``vllm serve BASE --enable-lora
    --lora-modules NAME=PATH``. A server that does not serve it answers 404 for each request (recorded as the
    request's error), never the base model silently in its place."""
    return Path(adapter.rstrip("/")).name or adapter


class OpenAIBackend:
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, concurrency: int = 16,
                 timeout_s: float = 120.0, max_retries: int = 6, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.supports_n = True

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        return asyncio.run(self.agenerate(requests))

    async def agenerate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        limit = asyncio.Semaphore(self.concurrency)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout_s) as client:
            async def one(request: LLMRequest) -> LLMResult:
                async with limit:
                    return await self._complete(client, request)
            return list(await asyncio.gather(*(one(r) for r in requests)))

    def _body(self, request: LLMRequest, n: int) -> dict:
        return chat_body(request, served_name(request.adapter) if request.adapter else request.model or self.model,
                         n)

    async def _complete(self, client: httpx.AsyncClient, request: LLMRequest) -> LLMResult:
        started = time.perf_counter()
        texts: list[str | None] = []
        finish: list[str | None] = []
        prompt_tokens = completion_tokens = 0
        error = None
        while len(texts) < request.n and error is None:
            want = request.n - len(texts) if self.supports_n else 1
            try:
                data = await self._post(client, self._body(request, want))
            except _NoN:
                self.supports_n = False
                continue
            except RuntimeError as exc:
                error = str(exc)
                break
            choices = data.get("choices") or []
            if not choices:
                error = f"no choices in response: {str(data)[:200]}"
                break
            for choice in choices[:want]:
                message = choice.get("message") or {}
                texts.append(message.get("content"))
                finish.append(choice.get("finish_reason"))
            usage = data.get("usage") or {}
            prompt_tokens += int(usage.get("prompt_tokens") or 0)
            completion_tokens += int(usage.get("completion_tokens") or 0)
            if len(choices) < want:
                self.supports_n = False
        return LLMResult(request_key=request.key(), texts=texts, finish_reasons=finish, prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens, latency_s=time.perf_counter() - started, error=error)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_backoff_s)
            except ValueError:
                pass
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** attempt))

    async def _post(self, client: httpx.AsyncClient, body: dict) -> dict:
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            try:
                response = await client.post("/chat/completions", json=body)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(self._delay(attempt, None))
                continue
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError:
                    last = "response is not JSON"
                    await asyncio.sleep(self._delay(attempt, None))
                    continue
            if response.status_code == 400 and body.get("n", 1) > 1 and "n" in response.text:
                raise _NoN()
            last = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code not in RETRY_STATUS:
                break
            await asyncio.sleep(self._delay(attempt, response.headers.get("retry-after")))
        raise RuntimeError(f"gave up after {self.max_retries + 1} attempts: {last}")


class _NoN(Exception):
    """The server does not accept n > 1: ask one completion at a time."""
