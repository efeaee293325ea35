"""LLM generators propose equivalent rewrites too (issue 15, item 3): the equivalent-rewrite prompt and its parser,
the proposer over the real transformers backend on a tiny model made on the spot (its garbage must come back as
counted reasons, never as candidates), and the proposer feeding ``EquivalentMaker`` through the real sandbox. A model
that answers well is stood in for by ``Scripted`` from tests/test_llm_agents.py (the fixed-response backend the LLM
agent tests use); its answers still go through the real parser, the real maker and the real sandbox."""

from __future__ import annotations

import pytest

from sinq.agents.cache import CarriedResponses
from sinq.agents.config import AgentConfig, EquivalenceConfig, Sampling
from sinq.agents.equivalents import UNSOUND, Candidate, EquivalentMaker
from sinq.agents.llm_equivalents import (
    EVIDENCE,
    TRANSFORMATION,
    Combined,
    LLMEquivalentProposer,
    combined,
    proposer_for,
    rejected,
)
from sinq.game.parsing import parse_alice, parse_alice_equivalent
from sinq.game.prompts import (
    ALICE_EQUIVALENT_PROMPT_VERSION,
    ALICE_EQUIVALENT_SYSTEM,
    ALICE_PROMPT_VERSION,
    alice_equivalent_messages,
    render_alice_equivalent,
)
from sinq.sources.loaders import load
from sinq.sources.problem import Problem
from sinq.warehouse.store import Warehouse
from tests.test_llm_agents import Scripted

ORIGINAL = '''def total(xs: list, k: int) -> int:
    """Sum of the items above k."""
    s = 0
    for x in xs:
        if x > k:
            s += x
    return s
'''
REWRITE = '''def total(xs: list, k: int) -> int:
    return sum(value for value in xs if not value <= k)
'''
SOUND = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        j = 0
        for b in numbers:
            if i != j:
                gap = abs(a - b)
                if gap < threshold:
                    return True
            j += 1
    return False
'''
"""Equal to the original for every accepted input (it iterates ``numbers`` as the original does; an index-based
``numbers[i]`` form would not be: on a dict it looks up keys, on None ``len`` raises another message, issue 26)."""
UNSOUND_REWRITE = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for a in numbers:
        for b in numbers:
            if abs(a - b) < threshold:
                return True
    return False
'''
PARSE_REASONS = {"empty_response", "truncated", "no_program", "syntax_error", "no_entry_point", "signature_changed",
                 "identical", "duplicate", "llm_error"}


def _answer(program: str) -> str:
    return render_alice_equivalent("Same behaviour, other surface.", program)


def _scripted_agent() -> AgentConfig:
    return AgentConfig(kind="llm", backend="openai", model="m", base_url="http://127.0.0.1:9")


def _tiny_agent(model) -> AgentConfig:
    return AgentConfig(kind="llm", backend="transformers", model=str(model), device="cpu",
                       sampling=Sampling(max_tokens=32, seed=5))


@pytest.fixture(scope="module")
def backend(tiny_model):
    from sinq.agents.transformers_backend import TransformersBackend

    return TransformersBackend(str(tiny_model), device="cpu", batch_size=8)


def test_the_prompt_asks_for_an_equivalent_rewrite_in_the_generators_format():
    system, user = alice_equivalent_messages(ORIGINAL, "total")
    assert system["content"] == ALICE_EQUIVALENT_SYSTEM and "IS semantically equivalent" in system["content"]
    assert "# Generated program" in system["content"] and "# Diverging input" not in system["content"]
    assert user["content"].startswith("Entry point function: total") and ORIGINAL.rstrip() in user["content"]
    assert ALICE_EQUIVALENT_PROMPT_VERSION != ALICE_PROMPT_VERSION
    assert parse_alice(_answer(REWRITE), ORIGINAL, "total").program == REWRITE, "the generator's parser finds it too"


@pytest.mark.parametrize(("text", "reason"), [
    (_answer(REWRITE), None),
    ("# Analysis\nIt already is as short as it gets.\n\n# Generated program\nThe same as above.\n", "no_program"),
    (_answer("def total(xs: list, k: int) -> int:\n    return sum(x for x in xs if x > k\n"), "syntax_error"),
    (_answer(REWRITE.replace("def total", "def total_above")), "no_entry_point"),
    (_answer(REWRITE.replace("k: int)", "k: int, start: int = 0)")), "signature_changed"),
    (_answer(ORIGINAL.replace('    """Sum of the items above k."""\n', "    # nothing changed\n")
             .replace("s += x", "s  +=  x")), "identical"),
    ("   \n", "empty_response"),
    ("# Analysis\nok\n\n# Generated program\n```python\ndef total(xs: list, k: int) -> int:\n    return (",
     "truncated"),
])
def test_parse_cases(text, reason):
    parsed = parse_alice_equivalent(text, ORIGINAL, "total")
    assert parsed.reason == reason, parsed.detail
    assert parsed.valid == (reason is None)
    if reason is None:
        assert parsed.program == REWRITE


def test_the_tiny_models_garbage_is_counted_never_a_candidate(backend, tiny_model):
    problems = load("humaneval", limit=2)
    config = EquivalenceConfig(per_problem=1, attempts=3)
    proposer = LLMEquivalentProposer(backend, _tiny_agent(tiny_model), config)
    made = proposer(problems)
    assert set(made) == {p.problem_id for p in problems}
    assert len(proposer.llm_requests(problems)) == 2 and all(r.n == 3 for r in proposer.llm_requests(problems))
    assert set(proposer.rejected) <= PARSE_REASONS, proposer.rejected
    for problem in problems:
        counts = proposer.by_problem[problem.problem_id]
        assert counts["asked"] == 3
        assert counts["candidates"] + sum(v for k, v in counts.items() if k not in ("asked", "candidates")) == 3
        for candidate in made[problem.problem_id]:
            assert parse_alice_equivalent(_answer(candidate.code), problem.program, problem.entry_point).valid
    assert sum(proposer.rejected.values()) + sum(len(c) for c in made.values()) == 6


def test_a_sound_rewrite_survives_with_llm_evidence_and_an_unsound_one_is_dropped(local_backend):
    problem = load("humaneval", limit=1)[0]
    config = EquivalenceConfig(per_problem=2, attempts=2, fuzz_budget=32)
    texts = [_answer(SOUND), _answer(UNSOUND_REWRITE), "I think they are the same.", _answer(problem.code)]
    proposer = LLMEquivalentProposer(Scripted(texts), _scripted_agent(), config)
    result = EquivalentMaker(local_backend, config, proposer=proposer).make([problem])

    assert proposer.rejected == {"no_program": 1, "identical": 1}
    assert [pair.variant_code for pair in result.pairs] == [SOUND]
    [pair] = result.pairs
    assert pair.evidence == EVIDENCE == "llm" and pair.transformations == [TRANSFORMATION]
    assert pair.inputs_tried and all(o["reason"].startswith(("same", "both")) for o in pair.outcomes)
    [dropped] = result.dropped
    assert dropped.reason == UNSOUND and dropped.variant_code == UNSOUND_REWRITE and dropped.input is not None
    assert result.blamed[TRANSFORMATION] == 1 and result.fuzzed[TRANSFORMATION] == 2
    assert result.attempts[problem.problem_id]["kept"] == 1
    assert proposer.response_of[(problem.problem_id, SOUND)].endswith(":0")


def test_both_interleaves_the_rewriter_and_the_llm_and_both_kinds_survive(local_backend):
    problem = load("humaneval", limit=1)[0]
    config = EquivalenceConfig(per_problem=2, attempts=2, fuzz_budget=24, proposer="both")
    maker = EquivalentMaker(local_backend, config)
    llm = LLMEquivalentProposer(Scripted([_answer(SOUND), "no code"]), _scripted_agent(), config)
    both = combined(maker.rewrites, llm)
    proposed = both([problem])[problem.problem_id]
    rewrites = maker.rewrites([problem])[problem.problem_id]
    assert rewrites, "the rewriter has candidates for this problem"
    assert [c.evidence for c in proposed[:2]] == ["construction", "llm"]
    assert len(proposed) == len(rewrites) + 1
    assert rejected(both) == {"empty_response": 2, "no_program": 1}, "missing choices are counted too"

    maker.proposer = both
    result = maker.make([problem])
    assert {p.evidence for p in result.pairs} == {"construction", "llm"}, result.dropped


def test_combined_leaves_out_a_candidate_another_proposer_already_made():
    problem = load("humaneval", limit=1)[0]
    same = Candidate(SOUND, ["a"], 0)
    reformatted = Candidate(SOUND.replace("j += 1", "j  +=  1") + "\n# done\n", [TRANSFORMATION], 0, EVIDENCE)
    other = Candidate(UNSOUND_REWRITE, [TRANSFORMATION], 1, EVIDENCE)
    mixed = combined(lambda ps: {problem.problem_id: [same]},
                     lambda ps: {problem.problem_id: [reformatted, other]})([problem])
    assert mixed[problem.problem_id] == [same, other]


def test_a_rewrite_that_repeats_the_setup_code_is_cut_back_to_the_solution():
    setup = "import math\n\nLIMIT = 10\n"
    code = "def f(x: int) -> int:\n    return min(math.floor(x), LIMIT)\n"
    problem = Problem("t", "1", code, "", "f", setup_code=setup, seed_inputs=["{'x': 3}"])
    rewrite = "def f(x: int) -> int:\n    floored = math.floor(x)\n    return LIMIT if floored > LIMIT else floored\n"
    config = EquivalenceConfig(per_problem=1, attempts=3)
    texts = [_answer(setup + "\n" + rewrite), _answer(rewrite), _answer(code)]
    proposer = LLMEquivalentProposer(Scripted(texts), _scripted_agent(), config)
    [candidate] = proposer([problem])[problem.problem_id]
    assert candidate.code == rewrite
    assert proposer.rejected == {"duplicate": 1, "identical": 1}, "the solution alone is the original too"
    assert setup.strip() in proposer.llm_requests([problem])[0].messages[1]["content"]


def test_a_backend_error_is_counted_not_raised():
    problem = load("humaneval", limit=1)[0]
    proposer = LLMEquivalentProposer(Scripted([], error="connection refused"), _scripted_agent(),
                                     EquivalenceConfig(per_problem=1, attempts=2))
    assert proposer([problem]) == {problem.problem_id: []}
    assert proposer.rejected == {"llm_error": 2}


def test_the_response_cache_is_carried_and_the_plan_finds_it(backend, tiny_model, tmp_path, monkeypatch):
    """The nightly plan looks the proposer's requests up (``_cached_responses``); a worker given those carried
    responses asks the model nothing and proposes the same; fresh answers come back as rows tagged with the
    equivalent-rewrite prompt version."""
    from sinq.agents.transformers_backend import TransformersBackend
    from sinq.tasks.stages import _cached_responses

    problems = load("humaneval", limit=2)
    agent, config = _tiny_agent(tiny_model), EquivalenceConfig(per_problem=1, attempts=2)
    carried = CarriedResponses()
    first = LLMEquivalentProposer(backend, agent, config, carried, run_id="run-1")
    made = first(problems)
    assert first.rows is carried.rows
    assert len(first.rows["llm_requests"]) == 2 and len(first.rows["llm_responses"]) == 4
    assert {r["prompt_version"] for r in first.rows["llm_requests"]} == {ALICE_EQUIVALENT_PROMPT_VERSION}
    assert {r["agent_id"] for r in first.rows["llm_requests"]} == {f"generator:transformers:{tiny_model}:-"}
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.store(first.rows)

    found = _cached_responses(warehouse, LLMEquivalentProposer(None, agent, config), problems)
    assert set(found) == {r["request_id"] for r in first.rows["llm_requests"]}

    def forbidden(self, requests):
        raise AssertionError("the model was asked again for responses the batch carried")

    monkeypatch.setattr(TransformersBackend, "generate", forbidden)
    again = LLMEquivalentProposer(backend, agent, config, CarriedResponses(found))
    assert again(problems) == made and again.rejected == first.rejected
    assert "llm_responses" not in again.rows


def test_proposer_for_follows_the_config(tiny_model, local_backend):
    maker = EquivalentMaker(local_backend, EquivalenceConfig())
    assert proposer_for(maker, AgentConfig()) == maker.rewrites
    llm_maker = EquivalentMaker(local_backend, EquivalenceConfig(proposer="llm"))
    with pytest.raises(ValueError, match="needs an llm generator"):
        proposer_for(llm_maker, AgentConfig())
    llm = proposer_for(llm_maker, _tiny_agent(tiny_model), CarriedResponses())
    assert isinstance(llm, LLMEquivalentProposer) and llm.config.proposer == "llm"
    both = proposer_for(EquivalentMaker(local_backend, EquivalenceConfig(proposer="both")), _tiny_agent(tiny_model))
    assert isinstance(both, Combined) and isinstance(both.proposers[1], LLMEquivalentProposer)
    with pytest.raises(ValueError, match="replay"):
        proposer_for(llm_maker, _tiny_agent(tiny_model).model_copy(update={"replay": True}))
