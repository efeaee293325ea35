"""The LLM backend interface every backend implements: ``generate(requests) -> results``, batch-first."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sinq.game.hashing import json_sha256


class LLMRequest(BaseModel):
    messages: list[dict]
    n: int = Field(1, ge=1)
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 2048
    seed: int | None = None
    json_schema: dict | None = None
    model: str | None = None
    adapter: str | None = None

    def key(self) -> str:
        """Content hash: the response cache's key, so a rerun never pays twice for the same request."""
        return json_sha256(self.model_dump())


def chat_body(request: LLMRequest, model: str, n: int) -> dict:
    """The OpenAI chat-completions body for a request (the openai backend and vLLM batch files share it)."""
    body: dict = {"model": model, "messages": request.messages, "n": n, "temperature": request.temperature,
                  "top_p": request.top_p, "max_tokens": request.max_tokens}
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "answer", "schema": request.json_schema}}
    return body


class LLMResult(BaseModel):
    request_key: str
    texts: list[str | None]
    finish_reasons: list[str | None]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    """Set when the backend gave up on this request (after retries): the caller records it, nothing is lost."""
