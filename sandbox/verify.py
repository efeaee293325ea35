"""Differential verification: the verdict rules of DESIGN.md §3 applied to batches of pairs.

Stage 1 runs each side once (first hash seed). Pairs whose sides agree are ``same`` at once: a false ``same`` only
costs a sample, a false ``diverges`` poisons a dataset, so only candidates pay for the rest. Stage 2 re-checks a
side that ran out of time or resources with a larger budget, then repeats both sides under every hash seed
(``repeats`` times each, fresh ``random`` entropy per run); a side that does not give one outcome throughout makes
the pair ``unstable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sinq.game.inputs import InputError, parse_input
from sinq.sandbox.config import Limits, SandboxConfig
from sinq.sandbox.outcome import CompareMode, Outcome, Verdict, divergence_reason, same_reason
from sinq.sandbox.pool import Job, WorkerPool

SIDES = ("original", "variant")


@dataclass
class Pair:
    """An (original, variant, diverging input) claim to settle. ``input`` is a dict or a JSON/literal string."""

    id: str
    original: str | bytes
    variant: str | bytes
    entry_point: str
    input: object


@dataclass
class _State:
    pair: Pair
    literal: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    first: dict[str, Outcome] = field(default_factory=dict)
    limits: dict[str, Limits] = field(default_factory=dict)
    runs: dict[str, list[Outcome]] = field(default_factory=dict)
    executions: int = 0
    verdict: Verdict | None = None


def longer_budget(limits: Limits, factor: float) -> Limits:
    return limits.model_copy(update={
        "timeout_s": limits.timeout_s * factor,
        "memory_mb": int(limits.memory_mb * 2),
        "max_file_mb": int(limits.max_file_mb * factor),
        "max_result_nodes": int(limits.max_result_nodes * factor),
        "max_result_bytes": int(limits.max_result_bytes * factor),
    })


def _decode(source: str | bytes) -> str:
    if isinstance(source, bytes):
        return source.decode("utf-8")
    return source


def _prepare(pair: Pair, config: SandboxConfig) -> _State:
    state = _State(pair)

    def invalid(reason: str, detail: str) -> _State:
        state.verdict = Verdict(id=pair.id, verdict="invalid", reason=reason, detail=detail)
        return state

    if not isinstance(pair.entry_point, str) or not pair.entry_point.isidentifier():
        return invalid("no_entry_point", f"entry point {pair.entry_point!r} is not an identifier")
    for side in SIDES:
        raw = getattr(pair, side)
        if not isinstance(raw, (str, bytes)):
            return invalid(f"{side}_no_program", f"{side} program is not a string (got {type(raw).__name__})")
        if not raw.strip():
            return invalid(f"{side}_no_program", f"{side} program is empty")
        try:
            source = _decode(raw)
        except UnicodeDecodeError as exc:
            return invalid(f"{side}_source_not_utf8", str(exc))
        if len(source.encode("utf-8", "surrogatepass")) > config.max_program_bytes:
            return invalid(f"{side}_program_too_large", f"{side} is over {config.max_program_bytes} bytes")
        state.sources[side] = source
    try:
        state.literal = parse_input(pair.input, config.max_input_bytes).literal
    except InputError as exc:
        return invalid(exc.reason, str(exc))
    return state


INFRASTRUCTURE_REASONS = {"sandbox_worker_died"}
"""Outcomes that describe the sandbox, not the program: never one half of a verdict. (A malformed outcome is what a
hostile child wrote on its result fd: the program's own doing, so it stays an outcome.)"""


def _infrastructure(*outcomes: Outcome) -> Outcome | None:
    return next((o for o in outcomes if o.kind == "crashed" and o.reason in INFRASTRUCTURE_REASONS), None)


def raise_for_sandbox(verdicts: Sequence[Verdict], what: str = "checks") -> None:
    """A ``sandbox_error`` verdict stays a per-line report where nothing is stored (``sinq verify``), but where
    verdicts become data it is infrastructure: ``SandboxUnavailable`` (retried as such), never a stored verdict.
    Raised rather than dropped so that the whole batch is redone: a dropped verdict would leave a sample or an
    answer without its check, and the content ids make the redo store each row once."""
    from sinq.sandbox.errors import SandboxUnavailable

    broken = [v for v in verdicts if v.reason == "sandbox_error"]
    if broken:
        raise SandboxUnavailable(f"the sandbox failed to run {len(broken)} of {len(verdicts)} {what} "
                                 f"({broken[0].detail}); nothing of this batch was stored")


def _invalid_reason(original: Outcome, variant: Outcome) -> str | None:
    """A side that is not a callable function taking the input (``…_fails_to_load``, ``…_no_entry_point``,
    ``…_syntax_error``, ``signature_changed``) makes the pair invalid, never one half of a divergence; so does a
    sandbox that failed to run a side (``sandbox_error``)."""
    if _infrastructure(original, variant) is not None:
        return "sandbox_error"
    if original.kind == "invalid":
        return "input_does_not_bind" if original.reason == "input_does_not_bind" else f"original_{original.reason}"
    if variant.kind == "invalid":
        return "signature_changed" if variant.reason == "input_does_not_bind" else f"variant_{variant.reason}"
    if original.params is not None and variant.params is not None and original.params != variant.params:
        return "signature_changed"
    return None


class Verifier:
    """Settles many pairs with as few sandbox round trips as the rules allow (two batches at most)."""

    def __init__(self, backend: WorkerPool, config: SandboxConfig | None = None) -> None:
        self.backend = backend
        self.config = config or backend.config
        self.mode: CompareMode = self.config.compare

    def _job(self, state: _State, side: str, seed: int, limits: Limits) -> Job:
        return Job(program=state.sources[side], entry_point=state.pair.entry_point, input=state.literal,
                   hash_seed=seed, limits=limits, tag=(state, side))

    def verify_many(self, pairs: Sequence[Pair]) -> list[Verdict]:
        config = self.config
        seeds = config.hash_seeds
        states = [_prepare(pair, config) for pair in pairs]
        live = [s for s in states if s.verdict is None]
        first_jobs = [self._job(s, side, seeds[0], config.limits) for s in live for side in SIDES]
        for job, outcome in zip(first_jobs, self.backend.run(first_jobs), strict=True):
            state, side = job.tag  # type: ignore[misc]
            state.first[side] = outcome
            state.executions += 1
        candidates = [s for s in live if self._after_first(s)]
        second: list[Job] = []
        for state in candidates:
            for side in SIDES:
                limits = state.limits[side]
                for seed in seeds:
                    for repeat in range(config.repeats):
                        if seed == seeds[0] and repeat == 0 and limits is config.limits:
                            state.runs[side] = [state.first[side]]
                            continue
                        second.append(self._job(state, side, seed, limits))
        for job, outcome in zip(second, self.backend.run(second), strict=True):
            state, side = job.tag  # type: ignore[misc]
            state.runs.setdefault(side, []).append(outcome)
            state.executions += 1
        for state in candidates:
            self._decide(state)
        for state in states:
            assert state.verdict is not None
            state.verdict.executions = state.executions
            runs = {side: list(state.runs.get(side) or ([state.first[side]] if side in state.first else []))
                    for side in SIDES}
            if any(runs.values()):
                state.verdict.runs = runs
        return [s.verdict for s in states]  # type: ignore[misc]

    def _after_first(self, state: _State) -> bool:
        """Decide what stage 1 can decide; return True when the pair needs stage 2."""
        original, variant = state.first["original"], state.first["variant"]
        reason = _invalid_reason(original, variant)
        if reason is not None:
            state.verdict = Verdict(id=state.pair.id, verdict="invalid", reason=reason, original=original,
                                    variant=variant, detail=(original.message if original.kind in ("invalid", "crashed")
                                                             and reason.startswith(("original", "input", "sandbox"))
                                                             else variant.message))
            return False
        if original.same_as(variant, self.mode):
            state.verdict = Verdict(id=state.pair.id, verdict="same", reason=same_reason(original),
                                    original=original, variant=variant)
            return False
        for side, outcome in (("original", original), ("variant", variant)):
            extend = not outcome.halted
            state.limits[side] = (longer_budget(self.config.limits, self.config.longer_budget_factor)
                                  if extend else self.config.limits)
        return True

    def _decide(self, state: _State) -> None:
        seeds = self.config.hash_seeds
        outcomes = {}
        for side in SIDES:
            runs = state.runs[side]
            broken = _infrastructure(*runs)
            if broken is not None:
                state.verdict = Verdict(id=state.pair.id, verdict="invalid", reason="sandbox_error",
                                        original=state.runs["original"][0], variant=state.runs["variant"][0],
                                        detail=f"{side}: {broken.message}")
                return
            invalid = next((o for o in runs if o.kind == "invalid"), None)
            if invalid is not None:
                state.verdict = Verdict(id=state.pair.id, verdict="invalid", reason=f"{side}_{invalid.reason}",
                                        original=state.runs["original"][0], variant=state.runs["variant"][0],
                                        detail=invalid.message)
                return
            keys = {o.key(self.mode) for o in runs}
            if len(keys) > 1:
                per_seed = [{o.key(self.mode) for o in runs if o.hash_seed == seed} for seed in seeds]
                depends = all(len(k) == 1 for k in per_seed)
                cause = "depends_on_hash_seed" if depends else "nondeterministic"
                kinds = sorted({o.kind for o in runs})
                state.verdict = Verdict(id=state.pair.id, verdict="unstable", reason=f"{side}_{cause}",
                                        original=state.runs["original"][0], variant=state.runs["variant"][0],
                                        detail=f"{side} gave {len(keys)} different outcomes ({', '.join(kinds)}) "
                                               f"over {len(runs)} runs")
                return
            outcomes[side] = runs[0]
        original, variant = outcomes["original"], outcomes["variant"]
        extended = any(state.limits[side] is not self.config.limits for side in SIDES)
        if original.same_as(variant, self.mode):
            reason = same_reason(original) + ("_after_longer_budget" if extended else "")
            state.verdict = Verdict(id=state.pair.id, verdict="same", reason=reason, original=original,
                                    variant=variant)
        else:
            state.verdict = Verdict(id=state.pair.id, verdict="diverges", reason=divergence_reason(original, variant),
                                    original=original, variant=variant)


def verify_many(pairs: Sequence[Pair], backend: WorkerPool, config: SandboxConfig | None = None) -> list[Verdict]:
    """Settle every pair; the batch API the rest of sinq calls."""
    return Verifier(backend, config).verify_many(pairs)


def run_tests(backend: WorkerPool, programs: Sequence[tuple[str, str]], limits: Limits | None = None) -> list[Outcome]:
    """Run each (program, tests) script: ``returned`` means the tests passed (problem validation)."""
    jobs = [Job(program=program, tests=tests, kind="script", limits=limits) for program, tests in programs]
    return backend.run(jobs)
