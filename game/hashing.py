"""One content hash for everything keyed by content (row ids, LLM request keys, config hashes): sha256 over
canonical JSON, so equal content gives equal keys across runs, processes and machines."""

from __future__ import annotations

import hashlib
import json


def json_sha256(value: object) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
