"""Equivalent candidates proposed by the generator's model (issue 15, item 3): the equivalent-rewrite prompt
(``game/prompts.py``), its parser (``game/parsing.py``), and nothing believed: ``EquivalentMaker`` fuzzes every
candidate against the original exactly as it fuzzes the rewriter's. Like ``LLMGenerator`` this only proposes, over
any LLM backend, and an unparsable answer is a reason code (counted here), never a candidate nor an exception.

The response cache works as for the generator: ``llm_requests(problems)`` names the cache entries a plan looks up
(``tasks/stages.py`` ``_cached_responses``), and ``responses`` (a ``CarriedResponses`` or the warehouse) wraps the
backend in the same ``CachedBackend``, so a rerun never pays twice and fresh answers come back as rows.
"""

from __future__ import annotations

from collections import Counter
from itertools import zip_longest

from sinq.agents.backends import llm_agent_id, make_backend
from sinq.agents.cache import CachedBackend, CarriedResponses
from sinq.agents.config import AgentConfig, EquivalenceConfig
from sinq.agents.equivalents import Candidate, EquivalentMaker, Proposer
from sinq.agents.llm import LLMRequest
from sinq.agents.llm_agents import _choices, _request
from sinq.game.parsing import parse_alice_equivalent, surface_key
from sinq.game.prompts import ALICE_EQUIVALENT_PROMPT_VERSION, alice_equivalent_messages
from sinq.sources.problem import Problem
from sinq.warehouse.store import Warehouse

EVIDENCE = "llm"
TRANSFORMATION = "llm_rewrite"
"""The one name an LLM candidate is blamed under when it diverges (the maker's per-transformation counters)."""


class LLMEquivalentProposer:
    """A ``Proposer``: per problem one request for ``per_problem * attempts`` choices; each choice that parses
    becomes a candidate (evidence ``llm``), the rest are counted by reason in ``rejected``."""

    prompt_version = ALICE_EQUIVALENT_PROMPT_VERSION

    def __init__(self, backend, agent: AgentConfig, config: EquivalenceConfig | None = None,
                 responses: CarriedResponses | Warehouse | None = None, run_id: str | None = None) -> None:
        self.agent = agent
        self.config = config or EquivalenceConfig()
        self.responses = responses
        if responses is not None and (agent.cache or agent.replay):
            backend = CachedBackend(backend, responses, llm_agent_id("generator", agent),
                                    prompt_version=self.prompt_version, run_id=run_id, replay=agent.replay)
        self.backend = backend
        self.name = f"llm-equivalent:{agent.model}" + (f"+{agent.adapter}" if agent.adapter else "")
        self.rejected: Counter = Counter()
        """Unusable choices by reason (``no_program``, ``syntax_error``, ``no_entry_point``, ``signature_changed``,
        ``identical``, ``duplicate``, ``llm_error``...), over every call."""
        self.by_problem: dict[str, Counter] = {}
        """Per problem id: choices asked, candidates made and rejections by reason (the last call's problems)."""
        self.response_of: dict[tuple[str, str], str] = {}
        """(problem id, candidate code) -> the response id (``request_key:choice``) it came from."""

    @property
    def choices(self) -> int:
        return self.config.per_problem * self.config.attempts

    @property
    def rows(self) -> dict[str, list[dict]]:
        """The LLM traffic this proposer's fresh answers produced (``llm_requests`` / ``llm_responses``), when its
        cache is carried rows; already in ``responses.rows`` if the caller shares that object."""
        return self.responses.rows if isinstance(self.responses, CarriedResponses) else {}

    def llm_requests(self, problems: list[Problem]) -> list[LLMRequest]:
        """What the model is asked (their keys name the response cache's entries)."""
        return [_request(self.agent, alice_equivalent_messages(p.program, p.entry_point or ""), self.choices)
                for p in problems if p.entry_point is not None]

    def __call__(self, problems: list[Problem]) -> dict[str, list[Candidate]]:
        asked = [p for p in problems if p.entry_point is not None]
        requests = self.llm_requests(asked)
        results = self.backend.generate(requests) if requests else []
        out: dict[str, list[Candidate]] = {}
        for problem, result in zip(asked, results, strict=True):
            counts = self.by_problem[problem.problem_id] = Counter(asked=self.choices)
            made = out[problem.problem_id] = []
            originals = {surface_key(problem.code), surface_key(problem.program)}
            seen: set[str | None] = set()
            for choice, (text, finish) in enumerate(_choices(result, self.choices)):
                reason, code = self._parse(problem, result.error, text, finish)
                key = surface_key(code) if code is not None else None
                if reason is None:
                    reason = "identical" if key in originals else "duplicate" if key in seen else None
                if reason is not None:
                    counts[reason] += 1
                    self.rejected[reason] += 1
                    continue
                seen.add(key)
                counts["candidates"] += 1
                self.response_of[(problem.problem_id, code)] = f"{result.request_key}:{choice}"
                made.append(Candidate(code, [TRANSFORMATION], choice, EVIDENCE))
        return out

    @staticmethod
    def _parse(problem: Problem, error: str | None, text: str | None, finish: str | None
               ) -> tuple[str | None, str | None]:
        """(reason, code): the code is what runs after the problem's setup code (``EquivalentMaker._program``
        prepends it), so a rewrite that repeats the setup the prompt showed is cut back to the solution."""
        if error is not None:
            return "llm_error", None
        parsed = parse_alice_equivalent(text or "", problem.program, problem.entry_point, finish)
        if parsed.reason is not None or parsed.program is None:
            return parsed.reason, None
        code, setup = parsed.program, problem.setup_code.strip()
        if setup and code.lstrip().startswith(setup):
            code = code.lstrip()[len(setup):].lstrip("\n")
        if surface_key(code) is None:
            return "syntax_error", None
        return None, code


class Combined:
    """Several proposers as one (``proposer = "both"``): per problem their candidates interleaved (first of each,
    then second of each...), so the maker's first ``per_problem`` fuzzed are a mix; a candidate another proposer
    already made (same code up to comments, formatting and docstrings) is left out."""

    def __init__(self, *proposers: Proposer) -> None:
        self.proposers = proposers

    def __call__(self, problems: list[Problem]) -> dict[str, list[Candidate]]:
        made = [proposer(problems) for proposer in self.proposers]
        out: dict[str, list[Candidate]] = {}
        for problem in problems:
            seen: set[str] = set()
            mixed = out[problem.problem_id] = []
            for round_ in zip_longest(*(m.get(problem.problem_id, []) for m in made)):
                for candidate in round_:
                    if candidate is None:
                        continue
                    key = surface_key(candidate.code) or candidate.code
                    if key not in seen:
                        seen.add(key)
                        mixed.append(candidate)
        return out


def combined(*proposers: Proposer) -> Proposer:
    return Combined(*proposers)


def rejected(proposer: Proposer) -> dict[str, int]:
    """The LLM choices that never became candidates, by reason, in ``proposer`` or any proposer it combines (empty
    for the rewriter alone): what the run's counts report next to the fuzz filter's drops."""
    total: Counter = Counter()
    total.update(getattr(proposer, "rejected", {}))
    for part in getattr(proposer, "proposers", ()):
        total.update(rejected(part))
    return dict(total.most_common())


def proposer_for(maker: EquivalentMaker, agent: AgentConfig, responses: CarriedResponses | Warehouse | None = None,
                 run_id: str | None = None) -> Proposer:
    """The proposer ``[agents.equivalence] proposer`` names, for ``maker``: its own rewriter, the generator's model
    (``agent``, adapter already resolved) with the equivalent-rewrite prompt, or both interleaved."""
    kind = maker.config.proposer
    if kind == "rewrite":
        return maker.rewrites
    if agent.kind != "llm":
        raise ValueError(f"[agents.equivalence] proposer = {kind!r} needs an llm generator ([agents.generator] "
                         f"kind = 'llm'), not {agent.kind!r}")
    if agent.replay and responses is None:
        raise ValueError("replay mode reads the response cache: it needs responses (a warehouse or carried rows)")
    backend = None if agent.replay else make_backend(agent)
    llm = LLMEquivalentProposer(backend, agent, maker.config, responses, run_id)
    return llm if kind == "llm" else combined(maker.rewrites, llm)
