"""LLM agents through the real transformers backend on a tiny random model made in the test: real loading code
(config, safetensors, tokenizer, chat template, PEFT), real batched generate, real sandbox. The model's garbage
must come back as reason codes, never as crashes."""

from __future__ import annotations

import pytest

from sinq.agents import play
from sinq.agents.base import EvaluatorRequest, GeneratorRequest
from sinq.agents.cache import CachedBackend
from sinq.agents.config import AgentConfig, Sampling
from sinq.agents.llm import LLMRequest, LLMResult
from sinq.agents.llm_agents import LLMEvaluator, LLMGenerator
from sinq.game.parsing import parse_alice
from sinq.game.prompts import render_alice
from sinq.sources.loaders import load
from sinq.warehouse.store import Warehouse

KNOWN_REASONS = {"empty_response", "truncated", "no_program", "syntax_error", "no_entry_point", "signature_changed",
                 "no_input", "input_not_literal", "input_does_not_bind", "claims_equivalent", "llm_error"}


@pytest.fixture(scope="module")
def backend(tiny_model):
    from sinq.agents.transformers_backend import TransformersBackend

    return TransformersBackend(str(tiny_model), device="cpu", batch_size=8)


def _config(model, **update) -> AgentConfig:
    return AgentConfig(kind="llm", backend="transformers", model=str(model),
                       sampling=Sampling(max_tokens=24, seed=7), **update)


class Scripted:
    """Stands in for a model that answers well (the tiny one cannot); the answers still go through the real parser
    and the real sandbox."""

    name = "scripted"

    def __init__(self, texts: list[str | None], error: str | None = None) -> None:
        self.texts, self.error = texts, error

    def generate(self, requests):
        return [LLMResult(request_key=r.key(), texts=[] if self.error else self.texts,
                          finish_reasons=[] if self.error else ["stop"] * len(self.texts), error=self.error)
                for r in requests]


def test_batched_generate_returns_n_choices_with_counts(backend):
    requests = [LLMRequest(messages=[{"role": "user", "content": "x" * (i + 1)}], n=3, max_tokens=16, seed=1)
                for i in range(5)]
    results = backend.generate(requests)
    assert [r.request_key for r in results] == [r.key() for r in requests]
    for result in results:
        assert len(result.texts) == 3 and len(result.finish_reasons) == 3
        assert set(result.finish_reasons) <= {"stop", "length"}
        assert 0 < result.completion_tokens <= 3 * 16
        assert result.prompt_tokens > 0 and result.error is None


def test_seeded_sampling_is_reproducible_and_greedy_is_deterministic(backend):
    request = LLMRequest(messages=[{"role": "user", "content": "hello"}], n=2, max_tokens=12, seed=3)
    assert backend.generate([request])[0].texts == backend.generate([request])[0].texts
    greedy = LLMRequest(messages=[{"role": "user", "content": "hello"}], temperature=0, max_tokens=12)
    assert backend.generate([greedy])[0].texts == backend.generate([greedy])[0].texts


def test_generator_garbage_becomes_reason_codes(backend, tiny_model, local_backend):
    problems = load("humaneval", limit=3)
    generator = LLMGenerator(backend, _config(tiny_model))
    samples = play.generate(generator, problems, 5, 2, local_backend)
    assert [len(group) for group in samples] == [2, 2, 2]
    for problem, group in zip(problems, samples, strict=True):
        for sample in group:
            assert sample.problem_id == problem.problem_id
            assert sample.reason in KNOWN_REASONS, sample.reason
            assert sample.meta["response"] is not None and sample.meta["request_key"]


def test_generator_claims_are_settled_by_the_sandbox_stage(local_backend):
    problem = load("humaneval", limit=1)[0]
    wrong = problem.code.replace("return False", "return None", 1)
    assert wrong != problem.code
    literal = problem.seed_inputs[0]
    truthful = render_alice("Returns None instead of False.", wrong, literal)
    false_claim = render_alice("Claims a difference that is not there.", problem.code, literal)
    assert parse_alice(truthful, problem.program, problem.entry_point).valid
    config = AgentConfig(kind="llm", backend="openai", model="m", base_url="http://127.0.0.1:9")
    generator = LLMGenerator(Scripted([truthful, false_claim]), config)
    proposed = generator.generate([GeneratorRequest(problem, 5, 2)])
    assert all(s.verdict is None for s in proposed[0]), "an LLM generator proposes; it never settles"
    play.settle_samples([problem], proposed, local_backend)
    group = proposed[0]
    assert group[1].reason is not None and group[1].reason.startswith("same")
    assert group[1].verdict is not None and group[1].verdict.verdict == "same"
    assert group[0].verdict is not None
    assert (group[0].reason is None) == (group[0].verdict.verdict == "diverges")


def test_evaluator_garbage_becomes_non_answers(backend, tiny_model):
    problem = load("humaneval", limit=1)[0]
    evaluator = LLMEvaluator(backend, _config(tiny_model))
    answers = evaluator.evaluate([EvaluatorRequest("p1", problem.program, problem.program, problem.entry_point, 3)])
    assert len(answers) == 1 and len(answers[0]) == 3
    for answer in answers[0]:
        assert answer.pair_id == "p1"
        assert answer.input is not None or answer.reason in KNOWN_REASONS


def test_backend_error_becomes_llm_error_not_an_exception():
    problem = load("humaneval", limit=1)[0]
    config = AgentConfig(kind="llm", backend="openai", model="m", base_url="http://127.0.0.1:9")
    group = LLMGenerator(Scripted([], error="connection refused"), config).generate(
        [GeneratorRequest(problem, 5, 2)])[0]
    assert [s.reason for s in group] == ["llm_error", "llm_error"]
    assert group[0].meta["detail"] == "connection refused"
    answers = LLMEvaluator(Scripted([], error="boom"), config).evaluate(
        [EvaluatorRequest("p", problem.program, problem.program, problem.entry_point, 2)])[0]
    assert [a.reason for a in answers] == ["llm_error", "llm_error"]


def test_response_cache_never_pays_twice(backend, tmp_path):
    class Counting:
        name = "counting"

        def __init__(self) -> None:
            self.calls = 0

        def generate(self, requests):
            self.calls += len(requests)
            return backend.generate(requests)

    counting = Counting()
    warehouse = Warehouse(tmp_path / "w.duckdb")
    cached = CachedBackend(counting, warehouse, "generator:transformers:tiny")
    requests = [LLMRequest(messages=[{"role": "user", "content": f"q{i}"}], n=2, max_tokens=8, seed=i)
                for i in range(3)]
    first = cached.generate(requests)
    again = cached.generate(requests)
    assert counting.calls == 3
    assert [r.texts for r in again] == [r.texts for r in first]
    assert all(r.cache_hit for r in again)
    replay = CachedBackend(None, warehouse, "generator:transformers:tiny", replay=True)
    assert [r.texts for r in replay.generate(requests)] == [r.texts for r in first]


def test_peft_adapter_changes_generation_and_is_switched_per_request(tiny_model, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sinq.agents.transformers_backend import TransformersBackend

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    lora = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                           init_lora_weights=False))
    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)

    backend = TransformersBackend(str(tiny_model), device="cpu")
    plain = LLMRequest(messages=[{"role": "user", "content": "hello"}], temperature=0, max_tokens=16)
    with_adapter = plain.model_copy(update={"adapter": str(adapter)})
    assert plain.key() != with_adapter.key()
    before = backend.generate([plain])[0].texts
    tuned, again = (r.texts for r in backend.generate([with_adapter, plain]))
    assert tuned != before
    assert again == before
    missing = plain.model_copy(update={"adapter": str(tmp_path / "nope")})
    assert "failed to load" in backend.generate([missing])[0].error


def test_llm_config_is_checked():
    with pytest.raises(ValueError, match="needs a backend"):
        AgentConfig(kind="llm", model="m")
    with pytest.raises(ValueError, match="base_url"):
        AgentConfig(kind="llm", backend="openai", model="m")


def test_a_batch_carries_its_cached_responses_to_the_worker_and_brings_new_ones_back(tiny_model, local_backend,
                                                                                     tmp_path, monkeypatch):
    """What a Dask worker on another host relies on: the flow's plan looks the batch's requests up in the warehouse,
    the worker's model answers only what is missing, and its fresh responses come back as rows stored with the
    batch (so a later plan finds them and the model is not asked again)."""
    from sinq.agents.transformers_backend import TransformersBackend
    from sinq.flows.config import RunConfig
    from sinq.settings import Settings
    from sinq.tasks import stages
    from sinq.warehouse.config import WarehouseConfig
    from tests.conftest import fast_config

    settings = Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=tmp_path / "w.duckdb"),
                        run=RunConfig(limit=2, export_dir=None))
    settings.agents.generator = _config(tiny_model)
    settings.agents.pairs_per_problem = 2
    ids = stages.source_problems(settings, "run-1")["problem_ids"]
    work = stages.plan_generate(settings, "run-1", ids)
    assert work.responses == {} and len(work.problems) == len(ids) == 2
    played = stages.play_generate(settings, work)
    assert len(played.rows["llm_requests"]) == 2 and len(played.rows["llm_responses"]) == 4
    assert stages.store_played(settings, played)["samples"] == 4

    def forbidden(self, requests):
        raise AssertionError("the model was asked again for responses the batch carried")

    monkeypatch.setattr(TransformersBackend, "generate", forbidden)
    settings.run.round = 1
    again = stages.plan_generate(settings, "run-2", ids)
    assert set(again.responses) == {r["request_id"] for r in played.rows["llm_requests"]}
    replayed = stages.play_generate(settings, again)
    assert "llm_responses" not in replayed.rows
    first = sorted((s["problem_id"], s["response_id"], s["status"]) for s in played.rows["samples"])
    second = sorted((s["problem_id"], s["response_id"], s["status"]) for s in replayed.rows["samples"])
    assert first == second


def test_a_retried_batch_reuses_the_answers_its_failed_attempt_got_and_still_brings_their_rows(backend):
    """A batch whose sandbox failed after the model answered stored nothing; its retry in the same worker process
    asks the model nothing and returns the rows the first attempt would have stored."""
    from sinq.agents.cache import CarriedResponses

    class Counting:
        name = "counting"
        calls = 0

        def generate(self, requests):
            Counting.calls += len(requests)
            return backend.generate(requests)

    requests = [LLMRequest(messages=[{"role": "user", "content": f"retry {i}"}], n=2, max_tokens=8, seed=i)
                for i in range(2)]
    first = CarriedResponses()
    texts = [r.texts for r in CachedBackend(Counting(), first, "generator:tiny").generate(requests)]
    retry = CarriedResponses()
    again = CachedBackend(Counting(), retry, "generator:tiny").generate(requests)
    assert Counting.calls == 2 and [r.texts for r in again] == texts
    assert sorted(r["response_id"] for r in retry.rows["llm_responses"]) == \
        sorted(r["response_id"] for r in first.rows["llm_responses"])
    assert len(retry.rows["llm_requests"]) == 2
