"""What an execution did, and how two outcomes compare (DESIGN.md §3)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

OutcomeKind = Literal["returned", "raised", "timeout", "resource_limit", "crashed", "invalid"]
VerdictKind = Literal["diverges", "same", "unstable", "invalid"]
CompareMode = Literal["strict", "loose"]


class Outcome(BaseModel):
    """One execution's result. ``digest``/``loose_digest`` identify a value or an exception canonically;
    ``value`` and ``message`` are bounded, address-normalised previews for people."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: OutcomeKind
    value: str | None = None
    type: str | None = None
    message: str | None = None
    digest: str | None = None
    loose_digest: str | None = None
    limit: str | None = None
    signal: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    signature: str | None = None
    params: str | None = None
    run_s: float | None = None
    wall_s: float | None = None
    hash_seed: int | None = None
    backend: str | None = None
    runtime: str | None = None

    def key(self, mode: CompareMode = "strict") -> tuple:
        """What decides equality: the value's canonical digest, the exception's type and message, the limit hit."""
        if self.kind == "returned":
            return ("returned", self.loose_digest if mode == "loose" else self.digest)
        if self.kind == "raised":
            return ("raised", self.digest)
        if self.kind == "resource_limit":
            return ("resource_limit", self.limit)
        if self.kind == "crashed":
            return ("crashed", self.signal, self.exit_code)
        if self.kind == "invalid":
            return ("invalid", self.reason)
        return ("timeout",)

    def same_as(self, other: Outcome, mode: CompareMode = "strict") -> bool:
        return self.key(mode) == other.key(mode)

    @property
    def halted(self) -> bool:
        """False when a bigger budget might change the outcome (time or resources ran out)."""
        return self.kind not in ("timeout", "resource_limit")

    def public(self) -> dict:
        """The outcome as users see it in JSON: no empty fields."""
        return self.model_dump(exclude_none=True)


class Verdict(BaseModel):
    """The settled claim about one (original, variant, input) triple, with the reason code and both outcomes."""

    id: str
    verdict: VerdictKind
    reason: str
    original: Outcome | None = None
    variant: Outcome | None = None
    detail: str | None = None
    executions: int = 0
    runs: dict[str, list[Outcome]] = {}
    """Every execution behind the verdict, per side (what the warehouse stores); not part of the public output."""

    def public(self) -> dict:
        data = {"id": self.id, "verdict": self.verdict, "reason": self.reason}
        data["original"] = self.original.public() if self.original else None
        data["variant"] = self.variant.public() if self.variant else None
        if self.detail:
            data["detail"] = self.detail
        data["executions"] = self.executions
        return data


def same_reason(outcome: Outcome) -> str:
    return {
        "returned": "same_value",
        "raised": "same_exception",
        "timeout": "both_timeout",
        "resource_limit": "same_resource_limit",
        "crashed": "same_crash",
        "invalid": "both_invalid",
    }[outcome.kind]


def divergence_reason(original: Outcome, variant: Outcome) -> str:
    """Name the kind of difference, so users can filter e.g. timeout-based pairs out of a training set."""
    kinds = {original.kind, variant.kind}
    if "timeout" in kinds:
        return "one_side_does_not_halt"
    if "resource_limit" in kinds:
        return "resource_limit"
    if "crashed" in kinds:
        return "crash"
    if kinds == {"returned"}:
        return "different_value"
    if kinds == {"raised"}:
        return "different_exception"
    return "value_vs_exception"
