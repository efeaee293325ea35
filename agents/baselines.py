"""Model-free agents that play anywhere: a mutation generator and a fuzzing evaluator. Every execution goes
through the sandbox in batches; a mutant for which no input shows a difference within the budget is discarded
and said so (it may be equivalent), never passed off as a pair."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from sinq.agents.base import EvaluatorAnswer, EvaluatorRequest, GeneratorRequest, GeneratorSample
from sinq.agents.config import BaselineConfig
from sinq.agents.exploration import Exploration, explore, pass_seed
from sinq.agents.mutation import DIFFICULTY_ORDER, Span, mutant_sites
from sinq.agents.search import candidates
from sinq.game import syntax
from sinq.game.similarity import ast_hash
from sinq.sandbox.config import Limits
from sinq.sandbox.outcome import Outcome
from sinq.sandbox.pool import Job, WorkerPool, source_key
from sinq.sandbox.tally import charged_to
from sinq.sandbox.verify import Pair, verify_many

COVER_ENTRY = "__sinq_cover__"
_COVER_SOURCE = """

def __sinq_cover__(*args, **kwargs):
    import builtins as _b
    import sys as _s
    lines = _b.set()
    target = _b.globals()[{entry!r}]
    name = __sinq_cover__.__code__.co_filename
    module = __name__
    limit = {limit}

    def local(frame, event, arg):
        if event == "line" and frame.f_lineno <= limit:
            lines.add(frame.f_lineno)
        return local

    def trace(frame, event, arg):
        code = frame.f_code
        if code.co_filename != name or code.co_firstlineno > limit:
            return None
        lines.add(code.co_firstlineno)
        return local

    budget = [10000]

    def own(value):
        budget[0] -= 1
        if budget[0] < 0 or _b.getattr(_b.type(value), "__module__", None) == module:
            return True
        if _b.isinstance(value, _b.BaseException):
            return _b.any(own(v) for v in value.args)
        if _b.isinstance(value, _b.dict):
            return _b.any(own(k) or own(v) for k, v in _b.list(value.items()))
        if _b.isinstance(value, (_b.list, _b.tuple, _b.set, _b.frozenset)):
            return _b.any(own(v) for v in _b.list(value))
        return False

    threads = _s.modules.get("threading")
    _s.settrace(trace)
    if threads is not None:
        threads.settrace(trace)
    value = None
    try:
        value = target(*args, **kwargs)
    except BaseException as exc:
        value = exc
    finally:
        _s.settrace(None)
        if threads is not None:
            threads.settrace(None)
    if own(value):
        return "*"
    runs, start, last = [], None, None
    for line in _b.sorted(lines):
        if start is None:
            start = last = line
        elif line == last + 1:
            last = line
        else:
            runs.append(_b.str(start) if start == last else _b.str(start) + "-" + _b.str(last))
            start = last = line
    if start is not None:
        runs.append(_b.str(start) if start == last else _b.str(start) + "-" + _b.str(last))
    return ",".join(runs)
"""
"""The instrumented copy's extra entry point: the original's own code objects traced line by line while the real
entry point runs (its exception swallowed; other threads traced too). The lines come back as a string of runs
("3-7,9"): a returned value only travels as its bounded preview, and a string of up to 2,000 characters travels
whole. When the call returned or raised an object of a class the program defines, the sandbox's encoding of it
runs program code after the call (``__repr__``, ``__str__``, ``__reduce_ex__``), so the answer is "*": unknown,
every line counts as reached."""

_COVERAGE: dict[tuple[str, str, str, int | None], tuple[frozenset[int] | None, float | None]] = {}
"""(program hash, entry point, input, hash seed) -> (lines the original runs on it or None when tracing failed, traced
runtime): one traced run per candidate input per process."""
_COVERAGE_MAX = 200_000


def cover_program(program: str, entry_point: str) -> str:
    """The original with ``__sinq_cover__`` appended: its own lines keep their numbers."""
    limit = program.count("\n") + 1
    return program + _COVER_SOURCE.format(entry=entry_point, limit=limit)


def parse_lines(outcome: Outcome) -> frozenset[int] | None:
    """The executed lines a cover run returned, or None when it did not return them whole."""
    if outcome.kind != "returned" or outcome.type != "str" or outcome.value is None:
        return None
    try:
        text = syntax.literal_eval(outcome.value)
        if text == "*":
            return None
        lines: set[int] = set()
        for part in filter(None, str(text).split(",")):
            low, _, high = part.partition("-")
            lines.update(range(int(low), int(high or low) + 1))
    except (ValueError, SyntaxError):
        return None
    return frozenset(lines)


def line_coverage(backend: WorkerPool, limits: Limits, runs: list[tuple[str, str, str]],
                  seeds: list[int] | None = None) -> list[tuple[frozenset[int] | None, float | None]]:
    """For each (program, entry point, input): the lines of ``program`` the call executes (None when the traced
    run did not finish or its lines did not come back) and the traced run's measured runtime; one traced run per
    distinct triple and hash seed (``seeds``, one per run; default the pool's first: set order can change the
    path, so a search uses the coverage of its own seed), in one batch, cached in memory."""
    seeds = seeds if seeds is not None else [backend.config.hash_seeds[0]] * len(runs)
    keys = [(source_key(program), entry, literal, seed) for (program, entry, literal), seed in zip(runs, seeds,
                                                                                                   strict=True)]
    missing: dict[tuple[str, str, str, int | None], Job] = {}
    for key, (program, entry, literal) in zip(keys, runs, strict=True):
        if key not in _COVERAGE and key not in missing:
            missing[key] = Job(program=cover_program(program, entry), entry_point=COVER_ENTRY, input=literal,
                               limits=limits, hash_seed=key[3])
    if missing:
        if len(_COVERAGE) + len(missing) > _COVERAGE_MAX:
            _COVERAGE.clear()
        for key, outcome in zip(missing, backend.run(list(missing.values())), strict=True):
            _COVERAGE[key] = (parse_lines(outcome), outcome.run_s)
    return [_COVERAGE[key] for key in keys]


def relative_timeout(config: BaselineConfig, runtimes: list[float | None]) -> float:
    """clamp(factor x the original's slowest measured runtime, floor, cap); the cap when nothing was measured.
    An input on which the traced original did not finish within the cap has no runtime: it times out at any
    search timeout up to the cap, so it does not raise the others'."""
    cap = config.search_timeout_s
    measured = [r for r in runtimes if r is not None]
    if config.search_timeout_factor <= 0 or not measured:
        return cap
    slowest = max(measured)
    return min(cap, max(config.search_timeout_floor_s, config.search_timeout_factor * slowest))


def _search_limits(backend: WorkerPool, config: BaselineConfig, timeout_s: float | None = None) -> Limits:
    limits = backend.config.limits
    timeout = min(limits.timeout_s, config.search_timeout_s if timeout_s is None else timeout_s)
    return limits.model_copy(update={"timeout_s": max(0.05, timeout)})


def first_differences(backend: WorkerPool, config: BaselineConfig,
                      trials: list[tuple[str, str, str, list[str]]],
                      timeouts: list[float] | None = None) -> list[list[str]]:
    """For each (original, variant, entry_point, inputs): the inputs on which one quick run of each side differs,
    in order, those where both sides halted first. One batch for everything; the original's runs are shared
    between its variants. ``timeouts`` gives each trial its own search timeout (default: the cap)."""
    return [halting + hanging for halting, hanging in differences(backend, config, trials, timeouts)]


def spread_seeds(backend: WorkerPool, count: int) -> list[int]:
    """A hash seed per trial, alternating over the sandbox's seeds: the pool keeps one group of workers per
    seed, so a search on one seed leaves the other group idle. Both sides of a comparison share their trial's
    seed; the verdict later checks every seed anyway."""
    seeds = backend.config.hash_seeds
    return [seeds[i % len(seeds)] for i in range(count)]


Key = tuple[str, str, float | None, int | None]


def differences(backend: WorkerPool, config: BaselineConfig, trials: list[tuple[str, str, str, list[str]]],
                timeouts: list[float] | None = None, memo: dict[Key, Outcome] | None = None,
                seeds: list[int] | None = None) -> list[tuple[list[str], list[str]]]:
    """``first_differences`` split: (inputs where both sides halted, inputs where one ran out of time or memory).
    ``memo`` keeps the originals' outcomes between calls (a search in rounds runs each original input once);
    ``seeds`` gives each trial its hash seed (default: the pool's first)."""
    memo = {} if memo is None else memo
    jobs: list[Job] = []
    index: dict[Key, int] = {}
    limits_for: dict[float | None, Limits] = {}

    def job_for(key: Key, entry: str) -> None:
        program, literal, timeout, seed = key
        if key not in index:
            if timeout not in limits_for:
                limits_for[timeout] = _search_limits(backend, config, timeout)
            index[key] = len(jobs)
            jobs.append(Job(program=program, entry_point=entry, input=literal, limits=limits_for[timeout],
                            hash_seed=seed))

    plan = []
    for t, (original, variant, entry, inputs) in enumerate(trials):
        timeout = timeouts[t] if timeouts is not None else None
        seed = seeds[t] if seeds is not None else None
        rows = []
        for literal in inputs:
            left: Key = (original, literal, timeout, seed)
            right: Key = (variant, literal, timeout, seed)
            if left not in memo:
                job_for(left, entry)
            job_for(right, entry)
            rows.append((literal, left, right))
        plan.append(rows)
    ran = backend.run(jobs)
    originals = {(t[0], literal) for t in trials for literal in t[3]}
    for key, position in index.items():
        if key[:2] in originals and ran[position].kind != "crashed":
            memo[key] = ran[position]

    def outcome(key: Key) -> Outcome:
        return memo[key] if key in memo else ran[index[key]]

    mode = backend.config.compare
    found: list[tuple[list[str], list[str]]] = []
    for rows in plan:
        halting, hanging = [], []
        for literal, a, b in rows:
            left, right = outcome(a), outcome(b)
            if "invalid" in (left.kind, right.kind) or (left.kind == right.kind == "timeout"):
                continue
            if not left.same_as(right, mode):
                (halting if left.halted and right.halted else hanging).append(literal)
        found.append((halting, hanging))
    return found


def _reaches(span: Span | None, lines: frozenset[int] | None, offset: int) -> bool:
    """Whether an input that ran ``lines`` of the program can see a change at ``span`` of the code."""
    if span is None or lines is None:
        return True
    low, high = span[0] + offset, span[1] + offset
    return any(low <= line <= high for line in lines)


HIGHER_ORDER_PER_PAIR = 2
"""Higher-order mutants picked per pair wanted (and the spare) once a problem's first-order ones are stored."""

MutantState = Literal["open", "claimed", "verified", "failed", "none", "unreached", "unclaimed"]


@dataclass
class _Mutant:
    operator: str
    source: str
    span: Span | None
    state: MutantState = "open"
    searched: int = 0
    """Candidate inputs before this index are settled for this mutant (run, or not reaching its span)."""
    runs: int = 0
    hanging: list[str] = field(default_factory=list)
    sample: GeneratorSample | None = None
    key: str | None = None
    """The variant's normalised AST hash (``samples.variant_key``: later nights never propose it again)."""

    def meta(self) -> dict:
        if self.key is None:
            self.key = ast_hash(self.source)
        return {"operator": self.operator, "variant_key": self.key}


@dataclass
class _Search:
    """One problem's search: its candidate inputs, how many of them are traced (the window every mutant may
    search), its mutants in pick order and what became of each."""

    request: GeneratorRequest
    inputs: list[str]
    mutants: list[_Mutant]
    offset: int | None
    stats: Counter
    lines: list[frozenset[int] | None] = field(default_factory=list)
    runtimes: list[float | None] = field(default_factory=list)
    window: int = 0
    claims: int = 0
    done: bool = False
    seed: int | None = None

    def reaching(self, mutant: _Mutant, skip: bool) -> list[str]:
        """The mutant's unsettled inputs inside the window that reach its changed lines (the others counted as
        ``inputs_skipped_unreached``)."""
        window = range(mutant.searched, self.window)
        chosen = [self.inputs[i] for i in window
                  if not skip or self.offset is None or _reaches(mutant.span, self.lines[i], self.offset)]
        self.stats["inputs_skipped_unreached"] += len(window) - len(chosen)
        return chosen

    def timeout(self, config: BaselineConfig) -> float:
        return relative_timeout(config, self.runtimes) if self.runtimes else config.search_timeout_s


class MutationGenerator:
    """Mutants of the entry point (12 operator kinds), each paired with a diverging input found by searching
    around the problem's seed inputs, then settled by the full verdict rules.

    The search pays only for mutants that can matter (as mutation-testing tools do): a traced run of the original
    per candidate input says which lines the input executes, and a mutant runs only on inputs that reach its
    changed lines (a mutant no candidate reaches is skipped: counted as ``skipped_unreached``, never stored as an
    attempt); search runs time out relative to the original's measured runtime. With ``early_stop`` the inputs
    open a window at a time (seeds and boundary edits first, traced as the window opens), a problem's mutants are
    searched a few at a time in pick order, and the search stops once the first ``n`` mutants in pick order that
    diverge and verify are known: the same pairs as searching every mutant on every input. Each problem's first
    sample carries the counts in ``meta["search"]``."""

    name = "baseline-mutation"

    def __init__(self, backend: WorkerPool, config: BaselineConfig | None = None,
                 exploration: Exploration | None = None) -> None:
        self.backend = backend
        self.config = config or BaselineConfig()
        self.exploration = exploration
        """Set by the nightly plan (issue 28): the pass and the variants each problem already holds."""

    def _pick(self, problem, difficulty: int, stats: Counter,
              n: int = 1) -> list[tuple[str, str, Span | None, str | None]]:
        """The ``max_mutants`` mutants nearest the target difficulty: operators by distance from it (ties in
        DIFFICULTY_ORDER), each one's sites in tree order, generated only as far as needed. Exploring a pass, those
        a problem already holds are left out and higher-order mutants fill in, at most ``HIGHER_ORDER_PER_PAIR``
        per pair wanted (plus the spare): they diverge more often than first-order ones, and each costs a parse
        (agents/exploration.py)."""
        start = round(difficulty / 10 * (len(DIFFICULTY_ORDER) - 1))
        rank = {name: abs(i - start) for i, name in enumerate(DIFFICULTY_ORDER)}
        order = sorted(DIFFICULTY_ORDER, key=rank.__getitem__)
        known = self.exploration.known.get(problem.problem_id, []) if self.exploration else []
        if known and self.exploration is not None:
            return explore(problem.code, problem.entry_point, order, known,
                           pass_seed(self.exploration.pass_id, problem.problem_id), self.config.max_mutants, stats,
                           HIGHER_ORDER_PER_PAIR * (n + 1))
        return [(*site, None) for site in itertools.islice(mutant_sites(problem.code, problem.entry_point, order),
                                                           self.config.max_mutants)]

    def _search(self, request: GeneratorRequest) -> _Search:
        config = self.config
        problem = request.problem
        inputs = list(candidates(problem.seed_inputs, config.search_budget, config.seed,
                                 boundary_first=config.early_stop))
        program, code = problem.program, problem.code
        offset = program[: len(program) - len(code)].count("\n") if program.endswith(code) else None
        stats: Counter = Counter()
        if config.coverage_skip and offset is None:
            stats["coverage_fallback"] += 1
        mutants = [_Mutant(operator, source, span, key=key)
                   for operator, source, span, key in self._pick(problem, request.target_difficulty, stats,
                                                                 request.n)]
        stats["picked"] = len(mutants)
        return _Search(request, inputs, mutants, offset, stats)

    def _open(self, searches: list[_Search]) -> None:
        """Widen each search's window by one chunk (all inputs without early_stop), tracing the new inputs
        in one batch when coverage or relative timeouts need them."""
        config = self.config
        traced = config.coverage_skip or config.search_timeout_factor > 0
        opened = []
        for search in searches:
            width = config.search_chunk if config.early_stop else len(search.inputs)
            start, search.window = search.window, min(len(search.inputs), search.window + width)
            opened.append((search, search.inputs[start: search.window]))
        runs = [(s.request.problem.program, s.request.problem.entry_point, x) for s, new in opened for x in new]
        seeds = [s.seed if s.seed is not None else self.backend.config.hash_seeds[0] for s, new in opened for _ in new]
        measured = iter(line_coverage(self.backend, _search_limits(self.backend, config), runs, seeds)
                        if traced and runs else [])
        for search, new in opened:
            for _ in new:
                lines, runtime = next(measured) if traced else (None, None)
                search.lines.append(lines)
                search.runtimes.append(runtime)
                search.stats["traced_inputs"] += traced
                if traced and lines is None and config.coverage_skip:
                    search.stats["untraced_inputs"] += 1

    def _close(self, search: _Search, mutant: _Mutant, literal: str | None, pairs: list[Pair],
               claims: list[_Mutant], index: int) -> None:
        """A mutant's search is over: a claim to verify, or (no input showed a difference) a rejected sample, or
        (it never ran: no candidate reaches its changed lines) only a count."""
        problem = search.request.problem
        if literal is None and mutant.hanging:
            literal = mutant.hanging[0]
        if literal is None:
            if mutant.runs == 0 and search.inputs:
                mutant.state = "unreached"
                return
            mutant.state = "none"
            mutant.sample = GeneratorSample(problem.problem_id, mutant.source, None, "no_diverging_input_found",
                                            mutant.meta())
            return
        if not self.config.early_stop and search.claims >= search.request.n + 1:
            mutant.state = "unclaimed"
            return
        search.claims += 1
        mutant.state = "claimed"
        pairs.append(Pair(f"{index}:{len(pairs)}", problem.program, mutant.source, problem.entry_point, literal))
        claims.append(mutant)
        mutant.hanging = [literal]

    def _plan(self, search: _Search, index: int, pairs: list[Pair],
              claims: list[_Mutant]) -> tuple[list[tuple[_Mutant, list[str]]], bool]:
        """This round's mutants for one problem, with their inputs, and whether it waits for a wider window.
        Walks the mutants in pick order: done when ``n`` have verified with every earlier one settled; at most
        ``n + 1`` mutants (the pairs wanted plus one spare) are open or verified at a time."""
        config = self.config
        n = search.request.n
        lanes: list[tuple[_Mutant, list[str]]] = []
        verified = in_play = 0
        unsettled = waiting = False
        for mutant in search.mutants:
            if mutant.state == "verified":
                verified += 1
                in_play += 1
                if verified >= n and not unsettled and config.early_stop:
                    search.done = True
                    return [], False
            if mutant.state == "claimed":
                unsettled = True
                in_play += 1
            if mutant.state != "open":
                continue
            if config.early_stop and (in_play >= n + 1 or verified >= n):
                break
            inputs = search.reaching(mutant, config.coverage_skip)
            if inputs:
                lanes.append((mutant, inputs))
            else:
                mutant.searched = search.window
                if mutant.searched >= len(search.inputs):
                    self._close(search, mutant, None, pairs, claims, index)
                    if mutant.state != "claimed":
                        continue
                else:
                    waiting = True
            unsettled = True
            in_play += 1
        if not lanes and not waiting and not any(m.state in ("open", "claimed") for m in search.mutants):
            search.done = True
        return lanes, waiting and not lanes

    def generate(self, requests: list[GeneratorRequest]) -> list[list[GeneratorSample]]:
        config = self.config
        searches = [self._search(r) for r in requests]
        for search, seed in zip(searches, spread_seeds(self.backend, len(searches)), strict=True):
            search.seed = seed
        self._open(searches)
        memo: dict[Key, Outcome] = {}
        while True:
            lanes: list[tuple[_Search, _Mutant, list[str]]] = []
            pairs: list[Pair] = []
            claims: list[_Mutant] = []
            closed: list[_Search] = []
            for index, search in enumerate(searches):
                if search.done:
                    continue
                found, waits = self._plan(search, index, pairs, claims)
                lanes += [(search, mutant, inputs) for mutant, inputs in found]
                if waits:
                    closed.append(search)
            if not lanes and not claims and not closed:
                break
            self._open(closed)
            if lanes:
                trials = [(s.request.problem.program, m.source, s.request.problem.entry_point, inputs)
                          for s, m, inputs in lanes]
                hits = differences(self.backend, config, trials, [s.timeout(config) for s, _, _ in lanes], memo,
                                   [s.seed for s, _, _ in lanes])
                for (search, mutant, inputs), (halting, hanging) in zip(lanes, hits, strict=True):
                    search.stats["search_runs"] += len(inputs)
                    mutant.runs += len(inputs)
                    mutant.searched = search.window
                    mutant.hanging += hanging
                    if halting or mutant.searched >= len(search.inputs):
                        self._close(search, mutant, halting[0] if halting else None, pairs, claims,
                                    searches.index(search))
            with charged_to("verdicts"):
                verdicts = verify_many(pairs, self.backend) if pairs else []
            for mutant, pair, verdict in zip(claims, pairs, verdicts, strict=True):
                search = searches[int(pair.id.split(":")[0])]
                reason = None if verdict.verdict == "diverges" else f"{verdict.verdict}:{verdict.reason}"
                mutant.state = "verified" if reason is None else "failed"
                mutant.sample = GeneratorSample(search.request.problem.problem_id, mutant.source, pair.input,
                                                reason, mutant.meta(), verdict)
        return [self._samples(search) for search in searches]

    def _samples(self, search: _Search) -> list[GeneratorSample]:
        """The first n verified mutants in pick order, then every rejected attempt; the counts on the first."""
        request = search.request
        states = Counter(m.state for m in search.mutants)
        stats = search.stats
        stats.update(skipped_unreached=states["unreached"], not_searched_early_stop=states["open"],
                     found_not_claimed=states["unclaimed"], no_diverging_input_found=states["none"])
        good = [m.sample for m in search.mutants if m.state == "verified" and m.sample][: request.n]
        rejected = [m.sample for m in search.mutants if m.state in ("failed", "none") and m.sample]
        extra = [m for m in search.mutants if m.state == "verified" and m.sample and m.sample not in good]
        stats["spare_verified"] += len(extra)
        group = good + rejected
        meta = {"search": {k: v for k, v in stats.items() if v}, "search_timeout_s": search.timeout(self.config)}
        if group:
            group[0].meta.update(meta)
        else:
            group.append(GeneratorSample(request.problem.problem_id, None, None, "no_sample", meta))
        return group


class FuzzEvaluator:
    """Bob without a model: searches around the seed inputs with ``n x 4`` candidates and answers with up to n
    inputs on which a quick run differs; where it finds fewer, the rest of its answers say "Yes" (equivalent): right
    on an equivalent pair, a miss on an inequivalent one (no divergence either way: difficulty is unchanged). The
    quick runs alternate the pool's hash seeds by pair (both worker groups busy); every answer is then settled by the
    full verdict on both seeds."""

    name = "baseline-fuzz"

    def __init__(self, backend: WorkerPool, config: BaselineConfig | None = None) -> None:
        self.backend = backend
        self.config = config or BaselineConfig()

    def evaluate(self, requests: list[EvaluatorRequest]) -> list[list[EvaluatorAnswer]]:
        trials = [(r.original, r.variant, r.entry_point,
                   list(candidates(r.seed_inputs, r.n * 4, self.config.seed + 1))) for r in requests]
        seeds = spread_seeds(self.backend, len(trials))
        hits = [h + g for h, g in differences(self.backend, self.config, trials, seeds=seeds)]
        answers = []
        for request, found in zip(requests, hits, strict=True):
            chosen = [EvaluatorAnswer(request.pair_id, literal, equivalent=False) for literal in found[: request.n]]
            chosen += [EvaluatorAnswer(request.pair_id, None, equivalent=True, reason="no_difference_found")
                       for _ in range(request.n - len(chosen))]
            answers.append(chosen)
        return answers
