"""The vLLM paths against real vLLM (the CPU build, in its own virtualenv made by ``make vllm-env``) on a tiny model
made in the test: ``vllm run-batch`` through the vllm-batch backend, and ``vllm serve`` behind the openai backend.
CI sets SINQ_REQUIRE_VLLM=1, so a missing vLLM environment fails there instead of skipping."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from sinq.agents.llm import LLMRequest
from sinq.agents.openai_backend import OpenAIBackend
from sinq.agents.vllm_batch_backend import VLLMBatchBackend, read_results

SWAP_SAMPLE = Path(__file__).resolve().parent / "data" / "identifier_swap_sample.csv"  # vendored: data/NOTICE.md
CPU_ARGS = ["--gpu-memory-utilization", "0.3", "--enforce-eager", "--no-enable-chunked-prefill"]


def _ask(i: int, **update) -> LLMRequest:
    fields = {"messages": [{"role": "user", "content": f"question {i}"}], "n": 2, "max_tokens": 12, "seed": i}
    return LLMRequest(**(fields | update))


def test_read_results_maps_by_id_and_never_shifts():
    requests = [_ask(i) for i in range(4)]
    ok = {"custom_id": "2", "response": {"status_code": 200, "body": {
        "choices": [{"index": 1, "message": {"content": "b"}, "finish_reason": "stop"},
                    {"index": 0, "message": {"content": "a"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7}}}}
    refused = {"custom_id": "0", "response": {"status_code": 400, "body": {"error": "bad"}}}
    errored = {"custom_id": "3", "error": {"message": "engine died"}}
    results = read_results(requests, [json.dumps(errored), "not json", json.dumps(ok), json.dumps(refused)],
                           None, 1.0)
    assert [r.request_key for r in results] == [r.key() for r in requests]
    assert results[2].texts == ["a", "b"] and results[2].finish_reasons == ["length", "stop"]
    assert (results[2].prompt_tokens, results[2].completion_tokens) == (5, 7)
    assert "HTTP 400" in results[0].error
    assert "no result" in results[1].error
    assert "engine died" in results[3].error


def test_missing_interpreter_is_a_clear_error_on_every_request(tmp_path):
    backend = VLLMBatchBackend(str(tmp_path), python=str(tmp_path / "no-python"))
    results = backend.generate([_ask(0), _ask(1)])
    assert all("vLLM interpreter not found" in r.error for r in results)


@pytest.fixture(scope="module")
def lora_adapter(tiny_model, tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                      init_lora_weights=False))
    path = tmp_path_factory.mktemp("lora")
    model.save_pretrained(path)
    weights = path / "adapter_model.safetensors"
    save_file({k: v * 30 if "lora_B" in k else v for k, v in load_file(weights).items()}, weights)
    return path


def test_run_batch_end_to_end(tiny_model, vllm_python, lora_adapter):
    backend = VLLMBatchBackend(str(tiny_model), python=vllm_python, max_model_len=512, extra_args=CPU_ARGS)
    greedy = LLMRequest(messages=[{"role": "user", "content": "hello"}], temperature=0, max_tokens=12)
    requests = [_ask(i) for i in range(4)] + [_ask(9, max_tokens=4000), greedy,
                                               greedy.model_copy(update={"adapter": str(lora_adapter)})]
    results = backend.generate(requests)
    assert [r.request_key for r in results] == [r.key() for r in requests]
    for result in results[:4]:
        assert result.error is None, result.error
        assert len(result.texts) == 2 and all(isinstance(t, str) for t in result.texts)
        assert 0 < result.completion_tokens <= 24 and result.prompt_tokens > 0
    assert "max_model_len" in results[4].error  # refused by vLLM, reported on that request alone
    base, tuned = results[5], results[6]
    assert base.error is None and tuned.error is None
    assert base.texts != tuned.texts, "the LoRA adapter must change vLLM's greedy output"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_model, vllm_python):
    """`vllm serve` on the tiny model (float32: the figures compare exactly with transformers'), its /v1 URL."""
    port = _free_port()
    env = {**os.environ, "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model), "--served-model-name",
         "tiny", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "4096", "--dtype", "float32",
         *CPU_ARGS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                pytest.fail(f"vllm serve exited {server.returncode}: {server.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "vllm serve did not come up in 300 s"
            time.sleep(2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_vllm_serve_behind_the_openai_backend(served):
    backend = OpenAIBackend(served, "tiny", concurrency=4, max_retries=1)
    requests = [_ask(i) for i in range(5)]
    results = backend.generate(requests)
    for result in results:
        assert result.error is None, result.error
        assert len(result.texts) == 2 and result.completion_tokens > 0
    assert backend.generate(requests[:1])[0].texts == results[0].texts  # seeded: same answer twice


def test_identifier_swap_log_likelihood_from_vllm_prompt_logprobs(served, tiny_model):
    """The served scorer (vLLM's echoed prompt log-probabilities over ids tokenised as transformers does) gives the
    same per-item log-likelihoods and picks as the transformers scorer on the same weights; without /tokenize the
    text path gives the same sums here; a chat-only answer is one clear error."""
    from sinq.evals.common import EvalError
    from sinq.evals.identifier_swap import ServedScorer, TransformersScorer, load

    items = load(SWAP_SAMPLE, 12)
    pairs = [(it.prompt, c) for it in items for c in it.classes]
    local = TransformersScorer(str(tiny_model))(pairs)
    remote = ServedScorer(served, "tiny")(pairs)
    assert max(abs(a - b) / abs(b) for a, b in zip(remote, local, strict=True)) < 1e-5
    text_only = ServedScorer(served, "tiny")
    text_only.tokenize = False
    assert max(abs(a - b) / abs(b) for a, b in zip(text_only(pairs), local, strict=True)) < 1e-5
    with pytest.raises(EvalError, match="answered 404"):
        ServedScorer(served, "not-served")(pairs[:1])
