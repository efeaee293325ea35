"""Audits: stored pairs of both kinds and the evaluator answers behind their labels, re-verified from scratch.

A stored verdict is a claim the warehouse makes to whoever trains on it. The audit settles each claim again in a
*fresh* backend (new worker processes, optionally the other backend) under hash seeds the run never used, with the
run's own verdict rules (limits, repeats, compare mode). An inequivalent pair is reproduced iff it ``diverges``
again with each side's outcome equal (``Outcome.key``) to the stored one; an equivalent pair iff every input it was
fuzzed on is ``same`` again, with the stored outcomes; a counted answer iff its ``diverged`` is the same again. A
pair whose counted answer does not reproduce is not reproduced either: its label is unreliable. Rows go to
``audits`` (insert-only) in one write; ``verified_pairs`` and ``equivalent_pairs`` leave out pairs whose latest
audit failed.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import get_args

from pydantic import ValidationError

from sinq.sandbox import open_backend
from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.outcome import Outcome, Verdict
from sinq.sandbox.verify import Pair, verify_many
from sinq.settings import Settings
from sinq.warehouse import queries
from sinq.warehouse.records import content_id
from sinq.warehouse.store import Warehouse

AUDIT_SEED_BASE = 7919
"""Audit hash seeds are the first two integers from here that no audited run used (runs default to 1 and 2)."""
RULE_FIELDS = ("limits", "compare", "repeats", "longer_budget_factor", "max_program_bytes", "max_input_bytes")
"""What makes a verdict: taken from the run that stored it. Everything else (backend, workers, image) is the
audit's own."""
OUTCOME_FIELDS = ("kind", "value", "type", "message", "digest", "limit", "signal", "exit_code", "reason")
VIEWS = {"inequivalent": "verified_pairs", "equivalent": "equivalent_pairs"}
"""The view that lists the standing pairs of each kind."""
KINDS = tuple(VIEWS)
COMPARE_MODES = get_args(SandboxConfig.model_fields["compare"].annotation)
"""The compare modes a verdict can be settled under again; a stored mode outside them falls back to the run's rules."""
EXPECTED = {"inequivalent": "diverges", "equivalent": "same"}
"""The verdict each kind of pair claims on its own inputs."""


@dataclass
class Claim:
    """One (original, variant, input) triple to settle again, and what the warehouse says about it."""

    pair_id: str
    original: str
    variant: str
    entry_point: str
    literal: str
    rules: str
    stored_verdict: str
    stored: dict[str, Outcome | None] = field(default_factory=dict)
    answers: list[tuple[str, bool]] = field(default_factory=list)
    is_pair: bool = False
    kind: str = "inequivalent"


def sample_ids(ids: list[str], n: int | None, seed: str) -> list[str]:
    """A deterministic sample: the n ids with the smallest sha256(seed:id); the same seed picks the same pairs."""
    ordered = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return sorted(ordered if n is None else ordered[:n])


def select_pairs(warehouse: Warehouse, sample: int | None, run_id: str | None, seed: str,
                 kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Ids of standing stored pairs of these kinds (verified inequivalent, equivalent): all (sample None), or a
    seeded sample of ``sample`` of each kind, optionally of one run."""
    unknown = set(kinds) - set(VIEWS)
    if unknown:
        raise ValueError(f"unknown pair kind(s) {sorted(unknown)} (inequivalent | equivalent)")
    return sorted(pair_id for kind in kinds
                  for pair_id in sample_ids(queries.verified_pair_ids(warehouse, run_id, VIEWS[kind]), sample, seed))


def _run_rules(config_json: str | None) -> dict | None:
    """The verdict rules a run used, from its stored config (a nightly stores Settings, `sinq verify` the sandbox
    config alone); None when they cannot be read."""
    if not config_json:
        return None
    try:
        data = json.loads(config_json)
        sandbox = SandboxConfig.model_validate(data.get("sandbox", data))
    except (ValueError, AttributeError, TypeError, ValidationError):
        return None
    return {"rules": sandbox.model_dump(mode="json", include=set(RULE_FIELDS)), "seeds": list(sandbox.hash_seeds)}


def _outcome(raw: str | None) -> Outcome | None:
    if not raw:
        return None
    try:
        return Outcome.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return None


def load_claims(warehouse: Warehouse, pair_ids: list[str], base: SandboxConfig) -> tuple[list[Claim], set[int]]:
    """The claims behind these pairs (each pair's own inputs: an equivalent pair's every fuzzed one; its counted
    answers' inputs; one claim per distinct triple) and every hash seed the runs behind them used."""
    if not pair_ids:
        return [], set()
    pairs, answers, seeds = queries.claims_behind(warehouse, pair_ids)
    fallback = base.model_dump(mode="json", include=set(RULE_FIELDS))

    def rules(config_json: str | None, compare: str | None) -> str:
        run = _run_rules(config_json)
        if run is not None:
            seeds.update(run["seeds"])
        chosen = dict(run["rules"] if run else fallback)
        if compare in COMPARE_MODES:
            chosen["compare"] = compare
        return json.dumps(chosen, sort_keys=True)

    claims: dict[tuple[str, str, str], Claim] = {}
    programs: dict[str, tuple[str, str, str]] = {}
    for p in pairs:
        programs[p["pair_id"]] = (p["original"], p["variant"], p["entry_point"])
        key = (p["pair_id"], p["literal"], rules(p["config"], p["compare_mode"]))
        claim = claims.setdefault(key, Claim(p["pair_id"], p["original"], p["variant"], p["entry_point"],
                                             p["literal"], key[2], p["verdict"]))
        claim.is_pair, claim.kind = True, p["pair_kind"]
        claim.stored = {"original": _outcome(p["original_outcome"]), "variant": _outcome(p["variant_outcome"])}
    for a in answers:
        original, variant, entry = programs[a["pair_id"]]
        key = (a["pair_id"], a["literal"], rules(a["config"], a["compare_mode"]))
        claim = claims.setdefault(key, Claim(a["pair_id"], original, variant, entry, a["literal"], key[2],
                                             a["verdict"]))
        claim.answers.append((a["answer_id"], bool(a["diverged"])))
    return list(claims.values()), seeds


def audit_seeds(used: set[int]) -> tuple[int, int]:
    """Two PYTHONHASHSEED values none of the audited runs used."""
    fresh = (seed for seed in count(AUDIT_SEED_BASE) if seed not in used)
    return next(fresh), next(fresh)


def _settle(claims: list[Claim], base: SandboxConfig, seeds: tuple[int, int]) -> tuple[list[Verdict], int]:
    """Every claim verified again in fresh backends (one per compare mode: it travels with the batch), closed
    afterwards; returns the verdicts in claim order and the executions they took."""
    verdicts: dict[int, Verdict] = {}
    by_rules: dict[str, list[int]] = {}
    for index, claim in enumerate(claims):
        by_rules.setdefault(claim.rules, []).append(index)
    backends: dict[str, object] = {}
    try:
        for rules_json, indexes in by_rules.items():
            config = SandboxConfig.model_validate({**base.model_dump(), **json.loads(rules_json), "hash_seeds": seeds})
            if config.compare not in backends:
                backend = open_backend(config)
                backends[config.compare] = backend
                backend.start()
            batch = [Pair(f"audit-{i}", claims[i].original, claims[i].variant, claims[i].entry_point,
                          claims[i].literal) for i in indexes]
            for index, verdict in zip(indexes, verify_many(batch, backends[config.compare], config), strict=True):
                verdicts[index] = verdict
    finally:
        for backend in backends.values():
            backend.close()
    ordered = [verdicts[i] for i in range(len(claims))]
    return ordered, sum(v.executions for v in ordered)


def _short(outcome: Outcome | None) -> dict | None:
    if outcome is None:
        return None
    return {k: v for k, v in outcome.model_dump(include=set(OUTCOME_FIELDS)).items() if v is not None}


def pair_reason(claim: Claim, verdict: Verdict) -> str | None:
    """None when the pair's claim reproduced (``diverges`` again for an inequivalent pair, ``same`` for an
    equivalent one, with the stored outcomes), else why not (``now_<verdict>:<reason>``,
    ``outcome_changed:<side>``)."""
    if verdict.verdict != EXPECTED[claim.kind]:
        return f"now_{verdict.verdict}:{verdict.reason}"
    mode = json.loads(claim.rules)["compare"]
    changed = [side for side in ("original", "variant")
               if claim.stored.get(side) is None or getattr(verdict, side) is None
               or claim.stored[side].key(mode) != getattr(verdict, side).key(mode)]
    if changed:
        return "outcome_changed:" + ("both" if len(changed) == 2 else changed[0])
    return None


def answer_reason(stored_diverged: bool, verdict: Verdict) -> str | None:
    diverged = verdict.verdict == "diverges"
    if diverged == stored_diverged:
        return None
    return "now_diverges" if diverged else f"now_{verdict.verdict}:{verdict.reason}"


def _tally(rows: list[dict]) -> dict:
    reasons = Counter(r["reason"] for r in rows if not r["reproduced"])
    reproduced = sum(r["reproduced"] for r in rows)
    return {"checked": len(rows), "reproduced": reproduced, "not_reproduced": len(rows) - reproduced,
            "by_reason": dict(reasons.most_common())}


def audit(warehouse: Warehouse, base: SandboxConfig, sample: int | None = None, run_id: str | None = None,
          seed: str = "sinq-audit", made_by: str | None = None, audit_run: str | None = None,
          kinds: tuple[str, ...] = KINDS) -> dict:
    """Re-verify standing stored pairs of these kinds (all, or a seeded sample of ``sample`` of each kind; of one
    run if given) and their counted answers; store one audit row per pair and per answer in one write; return the
    figures.

    ``made_by`` is the run this audit belongs to (a nightly run); without one the audit is a run of its own
    (kind ``audit`` in ``runs``). Top-level figures are per pair, final (an unreproduced answer fails its pair),
    and ``kinds`` splits them by pair kind; ``pairs`` is the pairs' own inputs alone, ``answers`` the counted
    evaluator answers."""
    started_at, started = datetime.now(UTC), time.perf_counter()
    audit_run = audit_run or f"audit-{uuid.uuid4().hex[:12]}"
    pair_ids = select_pairs(warehouse, sample, run_id, seed, kinds)
    claims, used = load_claims(warehouse, pair_ids, base)
    seeds = audit_seeds(used)
    verdicts, executions = _settle(claims, base, seeds) if claims else ([], 0)
    now = datetime.now(UTC)
    common = {"audit_run": audit_run, "backend": base.backend, "hash_seeds": json.dumps(list(seeds)),
              "run_id": made_by or audit_run, "created_at": now}
    own: dict[str, dict] = {}
    kind_of: dict[str, str] = {}
    answer_rows: list[dict] = []
    failed_answers: dict[str, list[str]] = {}
    for claim, verdict in zip(claims, verdicts, strict=True):
        outcomes = {"verdict_reason": verdict.reason, "original": _short(verdict.original),
                    "variant": _short(verdict.variant)}
        if claim.is_pair:
            reason = pair_reason(claim, verdict)
            row = own.get(claim.pair_id)
            if row is None or (row["reproduced"] and reason is not None):
                inputs = row["detail"]["inputs_checked"] if row else 0
                kind_of[claim.pair_id] = claim.kind
                row = own[claim.pair_id] = {
                    "subject": "pair", "pair_id": claim.pair_id, "answer_id": None,
                    "stored_verdict": claim.stored_verdict, "verdict": verdict.verdict, "reason": reason,
                    "reproduced": reason is None,
                    "detail": {**outcomes, "input": claim.literal, "inputs_checked": inputs}}
            row["detail"]["inputs_checked"] += 1
        for answer_id, diverged in claim.answers:
            reason = answer_reason(diverged, verdict)
            if reason is not None:
                failed_answers.setdefault(claim.pair_id, []).append(answer_id)
            answer_rows.append({"audit_id": content_id("audit", audit_run, "answer", answer_id), "subject": "answer",
                                "pair_id": claim.pair_id, "answer_id": answer_id,
                                "stored_verdict": "diverges" if diverged else claim.stored_verdict,
                                "verdict": verdict.verdict, "reason": reason, "reproduced": reason is None,
                                "detail": json.dumps({**outcomes, "stored_diverged": diverged}), **common})
    own_tally = _tally(list(own.values()))
    pair_rows = []
    for pair_id, row in own.items():
        final = dict(row)
        if row["reproduced"] and pair_id in failed_answers:
            final.update(reason="answer_not_reproduced", reproduced=False)
            final["detail"] = {**row["detail"], "answers_not_reproduced": failed_answers[pair_id]}
        final.update(audit_id=content_id("audit", audit_run, "pair", pair_id), detail=json.dumps(final["detail"]),
                     **common)
        pair_rows.append(final)
    result = {"audit_run": audit_run, **_tally(pair_rows), "pairs": own_tally, "answers": _tally(answer_rows),
              "kinds": {kind: _tally([r for r in pair_rows if kind_of[r["pair_id"]] == kind]) for kind in kinds},
              "backend": base.backend, "hash_seeds": list(seeds), "run_hash_seeds": sorted(used),
              "executions": executions,
              "selection": {"sample": sample, "run_id": run_id, "seed": seed, "kinds": list(kinds)},
              "not_reproduced_pairs": sorted(r["pair_id"] for r in pair_rows if not r["reproduced"])}
    batch: dict[str, list[dict]] = {"audits": pair_rows + answer_rows}
    if made_by is None and pair_rows:
        batch["runs"] = [_run_row(audit_run, base, seeds, result, started_at)]
    if pair_rows:
        warehouse.store(batch)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _run_row(audit_run: str, base: SandboxConfig, seeds: tuple[int, int], result: dict,
             started_at: datetime) -> dict:
    from sinq import code_version

    config = {"sandbox": {**base.model_dump(mode="json"), "hash_seeds": list(seeds)},
              "selection": result["selection"]}
    figures = {k: result[k] for k in ("checked", "reproduced", "not_reproduced")}
    return {"run_id": audit_run, "kind": "audit", "status": "completed", "config": json.dumps(config),
            "config_hash": content_id(config)[:16],
            "code_version": code_version(), "tags": json.dumps({"backend": base.backend, **figures}),
            "started_at": started_at, "finished_at": datetime.now(UTC)}


def audit_run_sample(settings: Settings, run_id: str) -> dict:
    """The nightly's audit: a seeded sample of ``[run] audit_sample`` of this run's verified pairs and as many of
    its equivalent pairs, on the run's backend kind in fresh processes under other hash seeds."""
    from sinq.tasks.stages import warehouse_for

    return audit(warehouse_for(settings), settings.sandbox, settings.run.audit_sample, run_id, seed=run_id,
                 made_by=run_id, audit_run=f"audit-{run_id}")
