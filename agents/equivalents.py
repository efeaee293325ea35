"""Equivalent pairs by construction, believed only after fuzzing (issue 15, items 1-2).

``EquivalentMaker`` rewrites a problem's code with composed semantics-preserving transformations
(``game/equivalence.py``), then runs every candidate against the original through the verdict rules
(``verify_many``) on the problem's seed inputs, the baseline's search inputs (``agents/search.py``
``candidates``, the builder the mutation generator uses), type-aware random inputs and inputs that put a literal of
another type than the seeds' in one argument (``cross_type_inputs``: the verdict engine accepts any literal, so an
equivalent label must hold on them too, issue 26). Any divergence drops the
candidate (``unsound_transformation``) and blames *every* transformation applied in it (a candidate composes
several; the counter cannot tell which one broke it, so each is charged once). A survivor carries its evidence:
the transformations, the inputs tried and each one's settled outcome. Evidence, never proof.

An input counts as tried only when the verdict rules settle it as ``same`` (equal values, the same exception,
both timing out...): an input the original itself rejects (``input_does_not_bind``, ``original_...``) is not
tried; an ``unstable`` input drops the candidate (``fuzz_unstable``: equality could not be settled), as does a
variant the sandbox cannot load (``variant_invalid``). A sandbox failure raises (``raise_for_sandbox``).

``recheck_equivalents`` settles pairs already made (stored ones too: ``tasks/equivalence_recheck.py``) on many more
such inputs, so that a pair made before a rule was fixed is found out.
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sinq.agents.baselines import differences, spread_seeds
from sinq.agents.config import BaselineConfig, EquivalenceConfig
from sinq.agents.search import candidates, seed_dicts
from sinq.game import syntax
from sinq.game.equivalence import rewrite
from sinq.game.inputs import InputError, parse_input
from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.outcome import Verdict
from sinq.sandbox.pool import Job, WorkerPool
from sinq.sandbox.tally import charged_to
from sinq.sandbox.verify import Pair, raise_for_sandbox, verify_many
from sinq.sources.problem import Problem

UNSOUND = "unsound_transformation"


@dataclass
class Candidate:
    """A proposed equivalent variant of a problem's code, before the fuzz filter."""

    code: str
    transformations: list[str]
    seed: int
    evidence: str = "construction"
    """How it was made: ``construction`` (the AST rewriter) or ``llm`` (a model's equivalent rewrite)."""


Proposer = Callable[[list[Problem]], dict[str, list[Candidate]]]
"""Candidates per problem id, best first (the rewriter by default; an LLM's equivalent rewrites too)."""


@dataclass
class EquivalentPair:
    """A candidate that survived the fuzz filter, with its evidence."""

    problem_id: str
    entry_point: str
    original_code: str
    variant_code: str
    transformations: list[str]
    inputs_tried: list[str]
    outcomes: list[dict]
    """Per input tried: the verdict reason (``same_value``, ``same_exception``, ``both_timeout``...) and the
    original's outcome kind and digest (equal to the variant's)."""
    seed: int
    evidence: str = "construction"
    fuzzed: int = 0
    """Fuzz inputs this candidate met: each ran once per side (quick runs, all equal or settled equal) and the
    first ``verified_inputs`` of them (``inputs_tried``) under the full verdict rules."""
    tried: list[tuple[Pair, Verdict]] = field(default_factory=list, repr=False)
    """Each input tried with its full verdict (what the warehouse stores, so ``sinq verify`` can re-check it)."""


@dataclass
class Dropped:
    problem_id: str
    variant_code: str
    transformations: list[str]
    reason: str
    input: str | None = None
    detail: str | None = None


@dataclass
class EquivalenceResult:
    pairs: list[EquivalentPair] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    blamed: Counter = field(default_factory=Counter)
    """Per transformation: candidates dropped as ``unsound_transformation`` it took part in."""
    fuzzed: Counter = field(default_factory=Counter)
    """Per transformation: candidates fuzzed that it took part in (the denominator of its drop share)."""
    stats: Counter = field(default_factory=Counter)
    attempts: dict[str, Counter] = field(default_factory=dict)
    """Per problem id: candidates, fuzzed, kept and dropped by reason (stored, so a rerun does not try again)."""

    def drop_share(self) -> dict[str, float]:
        return {name: self.blamed[name] / n for name, n in sorted(self.fuzzed.items()) if n}


def _random_value(like: object, rng: random.Random, depth: int = 0) -> object:
    """A value of the same type as ``like``: ints near boundaries, floats with signed zeros, strings incl. empty,
    containers of varied length whose items are shaped like ``like``'s."""
    if isinstance(like, bool):
        return rng.choice([True, False])
    if isinstance(like, int):
        return rng.choice([0, 1, -1, 2, -2, 3, 7, 10, 100, -100, like, like + 1, like - 1, 2 ** 31 - 1, -(2 ** 31),
                           2 ** 63, rng.randint(-1000, 1000), rng.randint(0, 20)])
    if isinstance(like, float):
        return rng.choice([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-9, 1e300, -1e300, like, -like,
                           round(rng.uniform(-100, 100), 3), rng.uniform(-1, 1)])
    if isinstance(like, str):
        alphabet = sorted(set(like)) or list("ab")
        pool = alphabet + list("aAzZ09 ,.-_()[]") + ["é"]
        length = rng.choice([0, 0, 1, 2, 3, 5, 8, max(0, len(like) - 1), len(like) + 1])
        return "".join(rng.choice(pool if rng.random() < 0.3 else alphabet) for _ in range(length))
    if isinstance(like, (list, tuple, set)) and depth < 4:
        items = list(like)
        length = rng.choice([0, 1, 2, 3, 4, 6, 9, len(items), len(items) + 1])
        made = [_random_value(rng.choice(items) if items else 0, rng, depth + 1) for _ in range(length)]
        if isinstance(like, set):
            try:
                return set(made)
            except TypeError:
                return set()
        return type(like)(made)
    if isinstance(like, dict) and depth < 4:
        entries = list(like.items())
        out: dict = {}
        for _ in range(rng.choice([0, 1, 2, 3, 5, len(entries)])):
            key, value = rng.choice(entries) if entries else ("a", 0)
            new_key = _random_value(key, rng, depth + 1)
            try:
                out[new_key] = _random_value(value, rng, depth + 1)
            except TypeError:
                pass
        return out
    return like


def random_inputs(seed_inputs: list[str], count: int, seed: int = 0) -> list[str]:
    """``count`` keyword dicts shaped like the seed inputs (each argument a random value of its seed's type)."""
    seeds = seed_dicts(seed_inputs)
    if not seeds:
        return []
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(count * 4):
        if len(out) >= count:
            break
        base = rng.choice(seeds)
        made = {k: _random_value(v, rng) for k, v in base.items()}
        try:
            literal = parse_input(made).literal
        except InputError:
            continue
        if literal not in out:
            out.append(literal)
    return out


def arg_types(seed_inputs: list[str]) -> dict[str, set[str]]:
    """The type names each argument takes in the seed inputs (what the type-dependent rules may rely on)."""
    types: dict[str, set[str]] = {}
    for value in seed_dicts(seed_inputs):
        for key, item in value.items():
            types.setdefault(key, set()).add(type(item).__name__)
    return types


CROSS_TYPE_INPUTS = 8
"""Fuzz inputs per candidate, within ``fuzz_budget`` (taken from the search and random share, so a run costs no
more), that give one argument a literal of another type than the seeds' (issue 26)."""
RECHECK_INPUTS = 32
"""Cross-type inputs per pair in ``recheck_equivalents`` (every other-type value in every argument, up to this)."""

GENERIC_OTHERS: tuple[object, ...] = (
    None, {0: 2, 1: 3}, {1, 2}, "ab", b"ab", (1, 2), [[1, 2], [3]], -0.0, True, [], {}, set(), "", b"", (), 0, 1,
    -1, 2.5, 1j, False, {"a": 1}, {"a"}, [None], ["a", "b"], [1.5, -0.0], [True, False], [{0: 1}], ((1, 2),),
    {0: [1]}, "0", b"\x00", 2 ** 70, -7)
"""Literals of every type the verdict engine accepts (no NaN or infinity: they have no literal form, and
``parse_input`` refuses them), nested and empty ones too: tried after the values made from the seed."""


def _ordered_set(items: list) -> bool:
    """Whether ``set(items)`` iterates in the same order under every hash seed (numbers only: a set of strings
    would make a verdict ``unstable``, which proves nothing either way)."""
    return all(type(v) in (int, float, bool) for v in items)


def other_type_values(like: object) -> list[object]:
    """Literals of other types than ``like`` (or containers of other item types), made from ``like`` first (a
    sequence's items as a dict with int keys: ``x[i]`` still works on it, ``enumerate`` gives its keys; None; as a
    set, tuple, list, nested; a number as None, str, float, complex, -0.0...), then ``GENERIC_OTHERS`` (less those of
    ``like``'s own scalar type). Never ``like`` itself."""
    made: list[object] = []
    if isinstance(like, (list, tuple, str, bytes)):
        items = list(like)
        made += [dict(enumerate(items)), None]
        if _ordered_set(items):
            made.append(set(items))
        made += [tuple(items) if not isinstance(like, tuple) else items, [like],
                 {i + 1: v for i, v in enumerate(items)}]
        if isinstance(like, str):
            made += [like.encode("utf-8", "surrogatepass"), items]
        if isinstance(like, bytes):
            made.append(like.decode("latin-1"))
        if isinstance(like, (list, tuple)) and all(isinstance(v, str) for v in items):
            made.append("".join(items))
    elif isinstance(like, dict):
        made += [list(like.values()), None, list(like), dict(enumerate(like.values())), list(like.items()),
                 tuple(like.values())]
        if _ordered_set(list(like)):
            made.append(set(like))
    elif isinstance(like, set):
        ordered = sorted(like, key=repr)
        made += [ordered, None, tuple(ordered), dict.fromkeys(ordered, 0)]
    elif isinstance(like, bool):
        made += [None, int(like), float(like), str(like), [like]]
    elif isinstance(like, int):
        made += [None, float(like), str(like), [like], bool(like), complex(like), -0.0]
    elif isinstance(like, float):
        made += [None, str(like), [like], complex(like), 0.0 if str(like) == "-0.0" else -0.0, True]
        if abs(like) < 1e300:
            made.append(int(like))
    elif isinstance(like, complex):
        made += [None, like.real, str(like)]
    elif like is None:
        made += [0, "", [], {}, False]
    out: list[object] = []
    seen = {(type(like), repr(like))}
    container = isinstance(like, (list, tuple, dict, set))
    derived = len(made)
    for position, value in enumerate(made + list(GENERIC_OTHERS)):
        key = (type(value), repr(value))
        if key not in seen and (position < derived or container or type(value) is not type(like)):
            seen.add(key)
            out.append(value)
    return out


def cross_type_inputs(seed_inputs: list[str], count: int | None = CROSS_TYPE_INPUTS, seed: int = 0) -> list[str]:
    """Up to ``count`` (None: all) keyword dicts like a seed input but with one argument of another literal type
    (``other_type_values``), made from the richest seed first (the longest), every argument in turn with the
    likeliest breakers first (a dict with int keys, a set, None), then one with every argument None, then the other
    seeds likewise. Deterministic for ``seed`` (which orders seeds of equal length); every one binds as the seeds
    do."""
    seeds = seed_dicts(seed_inputs)
    if not seeds:
        return []
    rotated = seeds[:]
    random.Random(seed).shuffle(rotated)
    rotated.sort(key=lambda base: -len(repr(base)))  # the richest seed first: its items make the best dict/set
    menus = [{key: other_type_values(value) for key, value in base.items()} for base in rotated]
    depth = max((len(m) for menu in menus for m in menu.values()), default=0)
    limit = float("inf") if count is None else count
    out: list[str] = []

    def emit(value: dict) -> None:
        try:
            literal = parse_input(value).literal
        except InputError:
            return
        if literal not in out and literal not in seed_inputs:
            out.append(literal)

    for index in range(len(rotated)):
        for rank in range(depth):
            for key, menu in menus[index].items():
                if rank < len(menu) and len(out) < limit:
                    emit({**rotated[index], key: menu[rank]})
            if len(out) >= limit:
                return out
        if index == 0:
            emit(dict.fromkeys(rotated[0], None))
    return out[:count] if count is not None else out


def fuzz_inputs(problem: Problem, config: EquivalenceConfig, baseline: BaselineConfig,
                cross_types: int = CROSS_TYPE_INPUTS) -> list[str]:
    """The seed inputs, then the baseline's search inputs, then type-aware random ones, then ``cross_types`` inputs
    (at most half of the budget the seeds leave) with one argument of another literal type than the seeds' (at the
    end, so the full verdicts that make the evidence still go to seeds and search inputs first),
    ``config.fuzz_budget`` in all."""
    budget = config.fuzz_budget
    seeds = list(dict.fromkeys(problem.seed_inputs))
    room = max(0, min(cross_types, (budget - len(seeds)) // 2))  # at most half of what the seeds leave
    cross = cross_type_inputs(problem.seed_inputs, room, config.random_seed) if room else []
    limit = budget - len(cross)
    chosen: list[str] = []

    def add(literals) -> None:
        for literal in literals:
            if len(chosen) >= limit:
                return
            if literal not in chosen and literal not in cross:
                chosen.append(literal)

    add(seeds)
    rest = limit - len(chosen)
    searched = round(rest * config.search_share)
    add(list(candidates(problem.seed_inputs, len(chosen) + searched, baseline.seed, boundary_first=True)))
    add(random_inputs(problem.seed_inputs, budget, config.random_seed))
    add(list(candidates(problem.seed_inputs, budget * 2, baseline.seed + 7)))
    return chosen + cross


class EquivalentMaker:
    """Equivalent variants of each problem, each fuzzed against its original in one sandbox batch."""

    name = "baseline-equivalent"

    def __init__(self, backend: WorkerPool, config: EquivalenceConfig | None = None,
                 baseline: BaselineConfig | None = None, proposer: Proposer | None = None,
                 cross_types: int = CROSS_TYPE_INPUTS) -> None:
        self.backend = backend
        self.config = config or EquivalenceConfig()
        self.baseline = baseline or BaselineConfig()
        self.proposer = proposer or self.rewrites
        self.cross_types = cross_types
        """Cross-type fuzz inputs per candidate (0 only to measure what they catch)."""

    def rewrites(self, problems: list[Problem]) -> dict[str, list[Candidate]]:
        """The AST rewriter's candidates for each problem."""
        return {p.problem_id: [Candidate(code, applied, seed) for code, applied, seed in self.candidates(p)]
                for p in problems}

    def candidates(self, problem: Problem) -> list[tuple[str, list[str], int]]:
        """Distinct rewrites of the problem's code: (code, transformations applied, seed)."""
        config = self.config
        if problem.entry_point is None:
            return []
        types = arg_types(problem.seed_inputs)
        seen = {ast.dump(syntax.parse(problem.code))}
        out = []
        for attempt in range(config.per_problem * config.attempts):
            seed = config.random_seed * 100_003 + attempt
            made = rewrite(problem.code, problem.entry_point, transformations=config.transformations,
                           steps=config.steps, seed=seed, arg_types=types)
            if not made.changed:
                continue
            key = ast.dump(syntax.parse(made.code))
            if key in seen:
                continue
            seen.add(key)
            out.append((made.code, made.applied, seed))
        return out

    def make(self, problems: list[Problem]) -> EquivalenceResult:
        """Fuzz candidates in rounds, one sandbox batch per round: each problem's first ``per_problem``
        candidates, then, only for problems still short (a candidate dropped), as many of the next ones as are
        missing. A survivor is never fuzzed in vain; a drop costs one more round for its problem."""
        result = EquivalenceResult()
        if not self.config.enabled:
            return result
        usable = [p for p in problems if p.reason is None and p.entry_point is not None]
        proposed = self.proposer(usable) if usable else {}
        queues: list[tuple[Problem, list[str], list[Candidate]]] = []
        for problem in usable:
            made = list(proposed.get(problem.problem_id, []))
            result.stats["problems"] += 1
            result.stats["candidates"] += len(made)
            result.attempts[problem.problem_id] = Counter(candidates=len(made))
            if not made:
                result.stats["problems_without_candidate"] += 1
            queues.append((problem, fuzz_inputs(problem, self.config, self.baseline, self.cross_types), made))
        if not self.config.verified_inputs:
            queues = self._screened(queues, result)
        kept: Counter = Counter()
        memo: dict = {}
        while True:
            plan: list[tuple[Problem, Candidate, list[str]]] = []
            for problem, inputs, made in queues:
                for _ in range(min(len(made), self.config.per_problem - kept[problem.problem_id])):
                    plan.append((problem, made.pop(0), inputs))
            if not plan:
                break
            result.stats["rounds"] += 1
            result.stats["fuzzed"] += len(plan)
            pairs = self._checked_pairs(plan, memo, result)
            with charged_to("equivalence"):
                verdicts = verify_many(pairs, self.backend) if pairs else []
            raise_for_sandbox(verdicts, "equivalence checks")
            by_candidate: dict[int, list] = {}
            for pair, verdict in zip(pairs, verdicts, strict=True):
                by_candidate.setdefault(int(pair.id.split(":")[0]), []).append((pair, verdict))
            for index, (problem, candidate, inputs) in enumerate(plan):
                attempt = result.attempts[problem.problem_id]
                attempt["fuzzed"] += 1
                if self._settle(result, problem, candidate, by_candidate.get(index, []), len(inputs)):
                    kept[problem.problem_id] += 1
                    attempt["kept"] += 1
                else:
                    attempt[f"dropped_{result.dropped[-1].reason}"] += 1
        return result

    def _checked_pairs(self, plan: list[tuple[Problem, Candidate, list[str]]], memo: dict,
                       result: EquivalenceResult) -> list[Pair]:
        """What the full verdict rules settle for each candidate: with ``verified_inputs`` = 0, every (screened)
        fuzz input; else one quick run per side on every fuzz input first (the originals' runs shared, as in the
        generator's search), then full verdicts on the first ``verified_inputs`` on which the original halted in
        its quick run (seeds first: an input it loops on would only show that both time out) and on every input the
        quick runs found different (a real divergence drops the candidate; a quick-run artefact is settled)."""
        full = self.config.verified_inputs
        programs = [self._program(problem, candidate.code) for problem, candidate, _ in plan]
        seeds = spread_seeds(self.backend, len(plan))
        if full:
            trials = [(problem.program, variant, problem.entry_point or "", inputs)
                      for (problem, _, inputs), variant in zip(plan, programs, strict=True)]
            with charged_to("equivalence"):
                quick = differences(self.backend, self.baseline, trials, memo=memo, seeds=seeds,
                                    timeouts=[self.config.quick_timeout_s] * len(trials))
        pairs: list[Pair] = []
        for index, ((problem, _, inputs), variant) in enumerate(zip(plan, programs, strict=True)):
            chosen = inputs
            if full:
                halting, hanging = quick[index]
                different = set(halting) | set(hanging)
                suspects = [literal for literal in inputs if literal in different]
                halted = [literal for literal in inputs
                          if (ran := memo.get((problem.program, literal, self.config.quick_timeout_s,
                                               seeds[index]))) is not None
                          and ran.halted]
                chosen = list(dict.fromkeys(halted[:full] + suspects))
                result.stats["quick_runs"] += len(inputs)
                result.stats["quick_suspects"] += len(suspects)
                result.stats["slow_inputs_skipped"] += len(inputs) - len(halted)
            pairs += [Pair(f"{index}:{j}", problem.program, variant, problem.entry_point, literal)
                      for j, literal in enumerate(chosen)]
        return pairs

    def _screened(self, queues: list, result: EquivalenceResult) -> list:
        """(Full verdicts on every input.) Each problem's fuzz inputs less those on which one quick run of the
        original does not halt within the search cap (``[agents.baseline] search_timeout_s``): a random input that
        makes the original loop for seconds would cost every candidate a full verdict budget on both sides, twice,
        and prove nothing but that both time out. One batch for every problem; what was left out is counted
        (``slow_inputs_skipped``)."""
        limits = self.backend.config.limits
        quick = limits.model_copy(update={"timeout_s": max(0.05, min(limits.timeout_s,
                                                                      self.baseline.search_timeout_s))})
        jobs = [Job(program=problem.program, entry_point=problem.entry_point or "", input=literal, limits=quick)
                for problem, inputs, made in queues if made for literal in inputs]
        with charged_to("equivalence"):
            outcomes = self.backend.run(jobs)
        screened, at = [], 0
        for problem, inputs, made in queues:
            if not made:
                screened.append((problem, inputs, made))
                continue
            mine, at = outcomes[at:at + len(inputs)], at + len(inputs)
            kept = [literal for literal, outcome in zip(inputs, mine, strict=True)
                    if outcome.kind in ("returned", "raised")]
            result.stats["slow_inputs_skipped"] += len(inputs) - len(kept)
            screened.append((problem, kept, made))
        return screened

    def _settle(self, result: EquivalenceResult, problem: Problem, candidate: Candidate, runs: list,
                fuzzed: int) -> bool:
        """Keep the candidate as a pair with its evidence, or record why it was dropped (and whom to blame)."""
        code, applied = candidate.code, candidate.transformations
        result.fuzzed.update(set(applied))
        result.stats["fuzz_executions"] += sum(v.executions for _, v in runs)
        drop = self._judge(problem, code, applied, runs)
        tried = [(p, v) for p, v in runs if v.verdict == "same"]
        if drop is None and len(tried) < self.config.min_inputs:
            drop = Dropped(problem.problem_id, code, applied, "too_few_inputs_tried")
        if drop is not None:
            result.dropped.append(drop)
            result.stats[f"dropped_{drop.reason}"] += 1
            if drop.reason == UNSOUND:
                result.blamed.update(set(applied))
            return False
        result.stats["inputs_tried"] += len(tried)
        result.pairs.append(EquivalentPair(
            problem.problem_id, problem.entry_point or "", problem.code, code, applied,
            [p.input for p, _ in tried],
            [{"input": p.input, "reason": v.reason, "kind": v.original.kind if v.original else None,
              "digest": v.original.digest if v.original else None} for p, v in tried], candidate.seed,
            candidate.evidence, fuzzed, tried))
        return True

    @staticmethod
    def _program(problem: Problem, code: str) -> str:
        """What runs for the variant: the problem's setup code, then the rewritten solution."""
        return f"{problem.setup_code}\n{code}" if problem.setup_code.strip() else code

    @staticmethod
    def _judge(problem: Problem, code: str, applied: list[str], runs: list) -> Dropped | None:
        for pair, verdict in runs:
            if verdict.verdict == "diverges":
                return Dropped(problem.problem_id, code, applied, UNSOUND, pair.input, verdict.reason)
            if verdict.verdict == "unstable":
                return Dropped(problem.problem_id, code, applied, "fuzz_unstable", pair.input, verdict.reason)
            if verdict.verdict == "invalid" and (verdict.reason.startswith("variant_")
                                                 or verdict.reason == "signature_changed"):
                return Dropped(problem.problem_id, code, applied, "variant_invalid", pair.input, verdict.reason)
        return None


@dataclass
class StoredEquivalent:
    """An equivalent pair to re-check: its programs as they run (setup code included) and the inputs it was fuzzed
    on (what the cross-type inputs are shaped from)."""

    pair_id: str
    original: str
    variant: str
    entry_point: str
    inputs: list[str]


@dataclass
class Recheck:
    """What ``recheck_equivalents`` found: per refuted pair the first input the verdict rules settle as
    ``diverges`` and its verdict; ``unstable`` likewise (equality could not be settled: not refuted, not
    believed either)."""

    checked: int = 0
    inputs: int = 0
    executions: int = 0
    refuted: dict[str, tuple[str, Verdict]] = field(default_factory=dict)
    unstable: dict[str, tuple[str, Verdict]] = field(default_factory=dict)
    verdicts: Counter = field(default_factory=Counter)

    def summary(self) -> dict:
        return {"checked": self.checked, "refuted": len(self.refuted), "unstable": len(self.unstable),
                "inputs": self.inputs, "executions": self.executions, "verdicts": dict(self.verdicts),
                "refuted_pairs": {k: {"input": i, "reason": v.reason} for k, (i, v) in sorted(self.refuted.items())}}


def recheck_equivalents(pairs: Sequence[StoredEquivalent], backend: WorkerPool, config: SandboxConfig | None = None,
                        per_pair: int | None = RECHECK_INPUTS, seed: int = 1, purpose: str = "audit") -> Recheck:
    """Settle each pair under the full verdict rules (``verify_many``, as ``sinq verify`` would) on up to
    ``per_pair`` inputs that put a literal of another type in one argument of its stored inputs (issue 26: a stored
    equivalent pair must not be refutable by any input the engine accepts, and the audit replays only the inputs
    that were fuzzed). One batch for all pairs; a pair is refuted by any ``diverges``. The sandbox time is charged
    to ``purpose``."""
    result = Recheck()
    plan: list[Pair] = []
    for index, pair in enumerate(pairs):
        result.checked += 1
        for j, literal in enumerate(cross_type_inputs(pair.inputs, per_pair, seed)):
            plan.append(Pair(f"{index}:{j}", pair.original, pair.variant, pair.entry_point, literal))
    result.inputs = len(plan)
    with charged_to(purpose):
        verdicts = verify_many(plan, backend, config) if plan else []
    raise_for_sandbox(verdicts, "equivalence rechecks")
    for checked, verdict in zip(plan, verdicts, strict=True):
        stored = pairs[int(checked.id.split(":")[0])]
        result.executions += verdict.executions
        result.verdicts[verdict.verdict] += 1
        if verdict.verdict == "diverges":
            result.refuted.setdefault(stored.pair_id, (str(checked.input), verdict))
        elif verdict.verdict == "unstable":
            result.unstable.setdefault(stored.pair_id, (str(checked.input), verdict))
    return result
