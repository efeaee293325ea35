"""Responses made elsewhere (API batches, other tools) as JSONL lines: chat transcripts or bare texts."""

from __future__ import annotations

import json
import re

from sinq.game.parsing import parse_alice, parse_bob

_ENTRY = re.compile(r"Entry point function:\s*([A-Za-z_]\w*)")
_FENCE = re.compile(r"```[A-Za-z0-9]*\n(.*?)```", re.DOTALL)


def original_from_user(content: str) -> tuple[str | None, str | None]:
    """The original program and entry point from Alice's user message (our prompt's format and the paper's)."""
    entry = _ENTRY.search(content)
    fence = _FENCE.search(content)
    return (fence.group(1) if fence else None), (entry.group(1) if entry else None)


def parse_line(role: str, number: int, raw: bytes) -> dict:
    """One output row per input line; a malformed line gets a reason instead of stopping the file."""
    empty = {"line": number, "program": None, "input": None, "equivalent": None}
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return {**empty, "reason": "malformed_line", "detail": str(exc)[:200]}
    if not isinstance(record, dict):
        return {**empty, "reason": "malformed_line", "detail": "not a JSON object"}
    original = entry_point = None
    finish_reason = record.get("finish_reason")
    if isinstance(record.get("messages"), list):
        messages = [m for m in record["messages"] if isinstance(m, dict)]
        replies = [m for m in messages if m.get("role") == "assistant"]
        if not replies:
            return {**empty, "reason": "no_response", "detail": "no assistant message"}
        text = replies[-1].get("content") or ""
        users = [m for m in messages if m.get("role") == "user"]
        if users:
            original, entry_point = original_from_user(str(users[-1].get("content") or ""))
    elif isinstance(record.get("text"), str):
        text = record["text"]
        original, entry_point = record.get("original"), record.get("entry_point")
    else:
        return {**empty, "reason": "malformed_line", "detail": 'neither "messages" nor "text"'}
    if role == "alice":
        parsed = parse_alice(str(text), original, entry_point, finish_reason)
        row = {**empty, "program": parsed.program, "input": parsed.input, "reason": parsed.reason}
    else:
        answer = parse_bob(str(text), finish_reason)
        row = {**empty, "input": answer.input, "equivalent": answer.equivalent, "reason": answer.reason}
        parsed = answer
    if parsed.detail:
        row["detail"] = parsed.detail
    return row
