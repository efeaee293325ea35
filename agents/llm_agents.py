"""Alice and Bob played by a language model through any LLM backend: game/ renders the prompts and parses the
answers; these agents only propose, the sandbox settles every claim (agents/play.py composes the two). A backend
failure or an unparsable answer becomes a reason code on the sample, never an exception, so one bad response costs
one sample."""

from __future__ import annotations

from sinq.agents.base import EvaluatorAnswer, EvaluatorRequest, GeneratorRequest, GeneratorSample
from sinq.agents.config import AgentConfig
from sinq.agents.llm import LLMRequest, LLMResult
from sinq.game.parsing import parse_alice, parse_bob
from sinq.game.prompts import ALICE_PROMPT_VERSION, BOB_PROMPT_VERSION, alice_messages, bob_messages


def _request(config: AgentConfig, messages: list[dict], n: int) -> LLMRequest:
    sampling = config.sampling
    return LLMRequest(messages=messages, n=n, temperature=sampling.temperature, top_p=sampling.top_p,
                      max_tokens=sampling.max_tokens, seed=sampling.seed, model=config.model, adapter=config.adapter)


def _choices(result: LLMResult, n: int) -> list[tuple[str | None, str | None]]:
    """Exactly n (text, finish_reason) slots; a missing choice is an empty text (becomes ``empty_response``)."""
    pairs = list(zip(result.texts, result.finish_reasons, strict=False))[:n]
    return pairs + [(None, None)] * (n - len(pairs))


class LLMGenerator:
    prompt_version = ALICE_PROMPT_VERSION

    def __init__(self, backend, config: AgentConfig) -> None:
        self.backend = backend
        self.config = config
        self.name = f"llm:{config.model}" + (f"+{config.adapter}" if config.adapter else "")

    def llm_requests(self, requests: list[GeneratorRequest]) -> list[LLMRequest]:
        """What the model is asked (their keys name the response cache's entries)."""
        return [_request(self.config, alice_messages(r.problem.program, r.problem.entry_point or "",
                                                     r.target_difficulty), r.n) for r in requests]

    def generate(self, requests: list[GeneratorRequest]) -> list[list[GeneratorSample]]:
        llm_requests = self.llm_requests(requests)
        results = self.backend.generate(llm_requests) if llm_requests else []
        samples: list[list[GeneratorSample]] = []
        for request, result in zip(requests, results, strict=True):
            problem = request.problem
            group = []
            for choice, (text, finish) in enumerate(_choices(result, request.n)):
                meta = {"request_key": result.request_key, "choice": choice, "response": text,
                        "finish_reason": finish, "prompt_version": self.prompt_version,
                        "request_completion_tokens": result.completion_tokens}
                if result.error is not None:
                    group.append(GeneratorSample(problem.problem_id, None, None, "llm_error",
                                                 meta | {"detail": result.error}))
                    continue
                parsed = parse_alice(text or "", problem.program, problem.entry_point, finish)
                group.append(GeneratorSample(problem.problem_id, parsed.program, parsed.input, parsed.reason,
                                             meta | {"detail": parsed.detail}))
            samples.append(group)
        return samples


class LLMEvaluator:
    prompt_version = BOB_PROMPT_VERSION

    def __init__(self, backend, config: AgentConfig) -> None:
        self.backend = backend
        self.config = config
        self.name = f"llm:{config.model}" + (f"+{config.adapter}" if config.adapter else "")

    def llm_requests(self, requests: list[EvaluatorRequest]) -> list[LLMRequest]:
        return [_request(self.config, bob_messages(r.original, r.variant, r.entry_point), r.n) for r in requests]

    def evaluate(self, requests: list[EvaluatorRequest]) -> list[list[EvaluatorAnswer]]:
        llm_requests = self.llm_requests(requests)
        results = self.backend.generate(llm_requests) if llm_requests else []
        answers = []
        for request, result in zip(requests, results, strict=True):
            group = []
            for text, finish in _choices(result, request.n):
                if result.error is not None:
                    group.append(EvaluatorAnswer(request.pair_id, None, reason="llm_error"))
                    continue
                parsed = parse_bob(text or "", finish)
                group.append(EvaluatorAnswer(request.pair_id, parsed.input, parsed.equivalent, parsed.reason))
            answers.append(group)
        return answers
