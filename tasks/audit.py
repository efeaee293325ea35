"""Audits: stored pairs of both kinds and the evaluator answers behind their labels, re-verified from scratch.

A stored verdict is a claim the warehouse makes to whoever trains on it, and a claim is only as good as the facts
that tie it to what is served. So the audit first re-derives every stored fact it relies on instead of trusting a
join: an inequivalent pair's verdict must be about the pair's own programs and the pair's own input (the input the
views and training sets read); an equivalent pair must have evidence (at least one verdict, each stored, about its
programs, on the inputs the evidence lists, the pair's own verdict and input among them); a counted answer's
verdict must be about the pair's programs and the answer's input. A fact that does not hold fails the pair
(``no_evidence``, ``claim_mismatch:<what>``) without running anything. Then it settles each claim again in a
*fresh* backend (new worker processes, optionally the other backend) under hash seeds the run never used, with the
run's own verdict rules (limits, repeats, compare mode). An inequivalent pair is reproduced iff it ``diverges``
again with each side's outcome equal (``Outcome.key``) to the stored one; an equivalent pair iff every input it was
fuzzed on is ``same`` again, each stored verdict equal to the one settled again (``verdict_changed:<stored>``
otherwise), with the stored outcomes; a counted answer iff its ``diverged`` and its stored verdict's are what its
input does again. A pair whose counted answer does not reproduce is not reproduced either: its label is
unreliable. Rows go to ``audits`` (insert-only) in one write; a pair whose latest audit failed gets the
``all_pairs`` status ``not_reproduced``, which takes it out of ``verified_pairs``, ``equivalent_pairs``, exports and
every training set. Pairs are chosen from ``all_pairs`` (what training reads), not the views, so a pair a view
hides but training would read is audited too.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import get_args

import duckdb
from pydantic import ValidationError

from sinq.agents.equivalents import RECHECK_INPUTS, Recheck, StoredEquivalent, recheck_equivalents
from sinq.sandbox import open_backend
from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.outcome import Outcome, Verdict
from sinq.sandbox.verify import Pair, verify_many
from sinq.settings import Settings
from sinq.tasks.equivalence_recheck import stored_equivalents
from sinq.warehouse import queries
from sinq.warehouse.records import content_id
from sinq.warehouse.store import DAMAGE_HINT, Warehouse, WarehouseError, _cause

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
class Stored:
    """One stored verdict a claim rests on, as the warehouse holds it."""

    verdict_id: str
    verdict: str
    original: Outcome | None = None
    variant: Outcome | None = None


@dataclass
class Claim:
    """One (original, variant, input) triple to settle again, and the stored verdicts that say what it gives: the
    pair's own (``own``: its diverging input, or each input an equivalent pair was fuzzed on) and its counted
    answers' (answer id, stored ``diverged``, the answer's stored verdict)."""

    pair_id: str
    original: str
    variant: str
    entry_point: str
    literal: str
    rules: str
    kind: str = "inequivalent"
    own: list[Stored] = field(default_factory=list)
    answers: list[tuple[str, bool, str]] = field(default_factory=list)


@dataclass
class Audited:
    """One selected pair as stored, and what its stored facts say before anything runs: ``mismatch`` is the reason
    code of the first fact that does not hold (no evidence, a verdict about another input or other programs), with
    ``detail`` naming it."""

    pair_id: str
    kind: str
    literal: str | None
    stored_verdict: str | None
    mismatch: str | None = None
    detail: dict = field(default_factory=dict)


@dataclass
class Claims:
    """What ``load_claims`` found: the triples to settle, every selected pair, the answers refused before running
    (answer id -> (pair id, reason, detail)) and every hash seed the runs behind them used."""

    claims: list[Claim]
    pairs: dict[str, Audited]
    refused_answers: dict[str, tuple[str, str, dict]]
    seeds: set[int]


def sample_ids(ids: list[str], n: int | None, seed: str) -> list[str]:
    """A deterministic sample: the n ids with the smallest sha256(seed:id); the same seed picks the same pairs."""
    ordered = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return sorted(ordered if n is None else ordered[:n])


def select_pairs(warehouse: Warehouse, sample: int | None, run_id: str | None, seed: str,
                 kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Ids of standing stored pairs of these kinds (``all_pairs`` status verified | equivalent: what the views and
    the training sets read): all (sample None), or a seeded sample of ``sample`` of each kind, optionally of one
    run."""
    unknown = set(kinds) - set(VIEWS)
    if unknown:
        raise ValueError(f"unknown pair kind(s) {sorted(unknown)} (inequivalent | equivalent)")
    return sorted(pair_id for kind in kinds
                  for pair_id in sample_ids(queries.standing_pair_ids(warehouse, kind, run_id), sample, seed))


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


def _foreign(verdict: dict, pair: dict) -> bool:
    """Whether a stored verdict is about other programs (or another entry point) than the pair's."""
    return any(verdict[k] != pair[k] for k in ("original_program_id", "variant_program_id", "entry_point"))


def pair_mismatch(pair: dict, evidence: dict | None, verdicts: dict[str, dict]) -> tuple[str | None, dict, list[dict]]:
    """Check the stored facts of one pair against each other, before anything runs: (the reason code of the first
    that does not hold or None, what it is, the stored verdicts to settle again in order). An inequivalent pair
    rests on its own verdict, which must be about its programs and its input (the input the views serve); an
    equivalent pair on its evidence: at least one verdict, every one stored and about its programs, the input ids
    the evidence lists being its verdicts' inputs, and the pair's own verdict and input the evidence's."""
    own = verdicts.get(pair["verdict_id"])
    if pair["pair_kind"] != "equivalent":
        if own is None:
            return "claim_mismatch:verdict", {"missing_verdict": pair["verdict_id"]}, []
        if _foreign(own, pair):
            return "claim_mismatch:programs", {"verdict": own["verdict_id"]}, []
        if own["input_id"] != pair["input_id"]:
            return "claim_mismatch:input", {"pair_input": pair["input_id"], "verdict_input": own["input_id"]}, []
        if pair["literal"] is None:
            return "claim_mismatch:input", {"missing_input": pair["input_id"]}, []
        return None, {}, [{**own, "literal": pair["literal"]}]
    if evidence is None or not evidence["verdict_ids"]:
        return "no_evidence", {"evidence": "no row" if evidence is None else "no verdicts"}, []
    ids, inputs = evidence["verdict_ids"], evidence["input_ids"]
    if inputs is None or len(inputs) != len(ids) or evidence["inputs_tried"] != len(ids):
        return "claim_mismatch:evidence", {"verdicts": len(ids), "input_ids": None if inputs is None else len(inputs),
                                           "inputs_tried": evidence["inputs_tried"]}, []
    missing = [v for v in ids if v not in verdicts]
    if missing:
        return "claim_mismatch:evidence", {"missing_verdicts": missing}, []
    if pair["verdict_id"] not in ids:
        return "claim_mismatch:evidence", {"pair_verdict_not_in_evidence": pair["verdict_id"]}, []
    stored = [verdicts[v] for v in ids]
    foreign = [v["verdict_id"] for v in stored if _foreign(v, pair)]
    if foreign:
        return "claim_mismatch:programs", {"verdicts": foreign}, []
    moved = [{"verdict": v["verdict_id"], "listed_input": listed, "verdict_input": v["input_id"]}
             for v, listed in zip(stored, inputs, strict=True) if v["input_id"] != listed]
    if own is not None and own["input_id"] != pair["input_id"]:
        moved.insert(0, {"pair_input": pair["input_id"], "verdict_input": own["input_id"]})
    moved += [{"verdict": v["verdict_id"], "missing_input": v["input_id"]} for v in stored if v["literal"] is None]
    if moved:
        return "claim_mismatch:input", {"inputs": moved}, []
    return None, {}, stored


def answer_mismatch(answer: dict, pair: dict, verdicts: dict[str, dict]) -> tuple[str | None, dict]:
    """A counted answer's stored facts: a verdict that exists, about the pair's programs, on the answer's own input
    (the one training sets read)."""
    verdict = verdicts.get(answer["verdict_id"]) if answer["verdict_id"] else None
    if verdict is None:
        return "claim_mismatch:verdict", {"missing_verdict": answer["verdict_id"]}
    if _foreign(verdict, pair):
        return "claim_mismatch:programs", {"verdict": verdict["verdict_id"]}
    if verdict["input_id"] != answer["input_id"]:
        return "claim_mismatch:input", {"answer_input": answer["input_id"], "verdict_input": verdict["input_id"]}
    return None, {}


def load_claims(warehouse: Warehouse, pair_ids: list[str], base: SandboxConfig) -> Claims:
    """The claims behind these pairs (each pair's own inputs: an equivalent pair's every fuzzed one; its counted
    answers' inputs; one claim per distinct triple), each pair's and answer's stored facts checked first (what does
    not hold is not run), and every hash seed the runs behind them used."""
    if not pair_ids:
        return Claims([], {}, {}, set())
    stored = queries.claims_behind(warehouse, pair_ids)
    seeds: set[int] = set(stored["seeds"])
    verdicts: dict[str, dict] = stored["verdicts"]
    fallback = base.model_dump(mode="json", include=set(RULE_FIELDS))

    def rules(verdict: dict) -> str:
        run = _run_rules(verdict["config"])
        if run is not None:
            seeds.update(run["seeds"])
        chosen = dict(run["rules"] if run else fallback)
        if verdict["compare_mode"] in COMPARE_MODES:
            chosen["compare"] = verdict["compare_mode"]
        return json.dumps(chosen, sort_keys=True)

    claims: dict[tuple[str, str, str], Claim] = {}

    def claim(pair: dict, literal: str, verdict: dict) -> Claim:
        key = (pair["pair_id"], literal, rules(verdict))
        return claims.setdefault(key, Claim(pair["pair_id"], pair["original"], pair["variant"], pair["entry_point"],
                                            literal, key[2], pair["pair_kind"]))

    audited: dict[str, Audited] = {}
    by_id: dict[str, dict] = {}
    for pair in stored["pairs"]:
        by_id[pair["pair_id"]] = pair
        own = verdicts.get(pair["verdict_id"])
        reason, detail, settle = pair_mismatch(pair, stored["evidence"].get(pair["pair_id"]), verdicts)
        audited[pair["pair_id"]] = Audited(pair["pair_id"], pair["pair_kind"], pair["literal"],
                                           own["verdict"] if own else None, reason, detail)
        for verdict in settle:
            claim(pair, verdict["literal"], verdict).own.append(Stored(
                verdict["verdict_id"], verdict["verdict"], _outcome(verdict["original_outcome"]),
                _outcome(verdict["variant_outcome"])))
    refused: dict[str, tuple[str, str, dict]] = {}
    for answer in stored["answers"]:
        pair = by_id[answer["pair_id"]]
        reason, detail = answer_mismatch(answer, pair, verdicts)
        if reason is None and answer["literal"] is None:
            reason, detail = "claim_mismatch:input", {"missing_input": answer["input_id"]}
        if reason is not None:
            refused[answer["answer_id"]] = (pair["pair_id"], reason, detail)
            continue
        verdict = verdicts[answer["verdict_id"]]
        claim(pair, answer["literal"], verdict).answers.append(
            (answer["answer_id"], bool(answer["diverged"]), verdict["verdict"]))
    return Claims(list(claims.values()), audited, refused, seeds)


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


def _cross_type(pairs: list[StoredEquivalent], base: SandboxConfig, seeds: tuple[int, int],
                per_pair: int | None) -> Recheck:
    """The equivalent pairs settled on inputs of other literal types, in a fresh backend under the audit's seeds."""
    config = base.model_copy(update={"hash_seeds": seeds})
    backend = open_backend(config)
    try:
        backend.start()
        return recheck_equivalents(pairs, backend, config, per_pair)
    finally:
        backend.close()


def _short(outcome: Outcome | None) -> dict | None:
    if outcome is None:
        return None
    return {k: v for k, v in outcome.model_dump(include=set(OUTCOME_FIELDS)).items() if v is not None}


def pair_reason(claim: Claim, stored: Stored, verdict: Verdict) -> str | None:
    """None when one of the pair's own stored verdicts reproduced: the verdict its kind claims (``diverges`` for
    an inequivalent pair, ``same`` for an equivalent one), equal to the stored verdict, with the stored outcomes;
    else why not (``now_<verdict>:<reason>``, ``verdict_changed:<stored verdict>``, ``outcome_changed:<side>``)."""
    if verdict.verdict != EXPECTED[claim.kind]:
        return f"now_{verdict.verdict}:{verdict.reason}"
    if stored.verdict != verdict.verdict:
        return f"verdict_changed:{stored.verdict}"
    mode = json.loads(claim.rules)["compare"]
    changed = [side for side in ("original", "variant")
               if getattr(stored, side) is None or getattr(verdict, side) is None
               or getattr(stored, side).key(mode) != getattr(verdict, side).key(mode)]
    if changed:
        return "outcome_changed:" + ("both" if len(changed) == 2 else changed[0])
    return None


def answer_reason(stored_diverged: bool, stored_verdict: str, verdict: Verdict) -> str | None:
    """None when a counted answer reproduced: its ``diverged`` is what its input does again, and so is its stored
    verdict's (``diverges`` or not); else ``now_<verdict>:<reason>`` (``now_diverges``) or
    ``verdict_changed:<stored verdict>``."""
    diverged = verdict.verdict == "diverges"
    if diverged != stored_diverged:
        return "now_diverges" if diverged else f"now_{verdict.verdict}:{verdict.reason}"
    if (stored_verdict == "diverges") != diverged:
        return f"verdict_changed:{stored_verdict}"
    return None


def _tally(rows: list[dict]) -> dict:
    reasons = Counter(r["reason"] for r in rows if not r["reproduced"])
    reproduced = sum(r["reproduced"] for r in rows)
    return {"checked": len(rows), "reproduced": reproduced, "not_reproduced": len(rows) - reproduced,
            "by_reason": dict(reasons.most_common())}


@contextmanager
def _database(warehouse: Warehouse) -> Iterator[None]:
    """A database that fails under the audit (a damaged file DuckDB only notices mid-query) is a warehouse problem
    (exit 4), never an internal error: the audit's exit 1 means "did not reproduce" and nothing else."""
    try:
        yield
    except duckdb.Error as exc:
        raise WarehouseError(f"{warehouse.path} failed under the audit ({_cause(exc)})",
                             hint=DAMAGE_HINT) from exc


def audit(warehouse: Warehouse, base: SandboxConfig, sample: int | None = None, run_id: str | None = None,
          seed: str = "sinq-audit", made_by: str | None = None, audit_run: str | None = None,
          kinds: tuple[str, ...] = KINDS, cross_type: int | None = RECHECK_INPUTS) -> dict:
    """Re-verify standing stored pairs of these kinds (all, or a seeded sample of ``sample`` of each kind; of one
    run if given) and their counted answers; store one audit row per pair and per answer in one write; return the
    figures.

    The file is checked whole first (a truncated or damaged one is refused, exit 4). ``made_by`` is the run this
    audit belongs to (a nightly run); without one the audit is a run of its own (kind ``audit`` in ``runs``).
    Top-level figures are per pair, final (an unreproduced answer fails its pair), and ``kinds`` splits them by
    pair kind; ``pairs`` is the pairs' own claims alone, ``answers`` the counted evaluator answers.

    An equivalent pair that reproduced on every input it was fuzzed on is then settled on up to ``cross_type``
    inputs of other literal types than those (``refuted_cross_type`` when one diverges: the label must hold for
    every input the engine accepts, and the fuzzed inputs alone cannot show that; 0 or None skips this)."""
    started_at, started = datetime.now(UTC), time.perf_counter()
    audit_run = audit_run or f"audit-{uuid.uuid4().hex[:12]}"
    with _database(warehouse):
        warehouse.check()
        pair_ids = select_pairs(warehouse, sample, run_id, seed, kinds)
        loaded = load_claims(warehouse, pair_ids, base)
        equivalents = stored_equivalents(warehouse, [i for i, p in loaded.pairs.items()
                                                     if p.kind == "equivalent" and p.mismatch is None]) \
            if cross_type else []
    claims = loaded.claims
    seeds = audit_seeds(loaded.seeds)
    verdicts, executions = _settle(claims, base, seeds) if claims else ([], 0)
    now = datetime.now(UTC)
    common = {"audit_run": audit_run, "backend": base.backend, "hash_seeds": json.dumps(list(seeds)),
              "run_id": made_by or audit_run, "created_at": now}
    own: dict[str, dict] = {}
    for pair_id, pair in loaded.pairs.items():
        reason = pair.mismatch
        own[pair_id] = {"subject": "pair", "pair_id": pair_id, "answer_id": None, "stored_verdict": pair.stored_verdict,
                        "verdict": None, "reason": reason, "reproduced": reason is None,
                        "detail": {"input": pair.literal, "inputs_checked": 0,
                                   **({"mismatch": pair.detail} if reason else {})}}
    answer_rows: list[dict] = []
    failed_answers: dict[str, list[str]] = {}

    def answer_row(pair_id: str, answer_id: str, stored_verdict: str | None, verdict: str | None,
                   reason: str | None, detail: dict) -> None:
        if reason is not None:
            failed_answers.setdefault(pair_id, []).append(answer_id)
        answer_rows.append({"audit_id": content_id("audit", audit_run, "answer", answer_id), "subject": "answer",
                            "pair_id": pair_id, "answer_id": answer_id, "stored_verdict": stored_verdict,
                            "verdict": verdict, "reason": reason, "reproduced": reason is None,
                            "detail": json.dumps(detail), **common})

    for claim, verdict in zip(claims, verdicts, strict=True):
        outcomes = {"verdict_reason": verdict.reason, "original": _short(verdict.original),
                    "variant": _short(verdict.variant)}
        row = own[claim.pair_id]
        for stored in claim.own:
            reason = pair_reason(claim, stored, verdict)
            if row["verdict"] is None or (row["reproduced"] and reason is not None):
                inputs = row["detail"]["inputs_checked"]
                row.update(stored_verdict=stored.verdict, verdict=verdict.verdict, reason=reason,
                           reproduced=reason is None,
                           detail={**outcomes, "input": claim.literal, "inputs_checked": inputs})
            row["detail"]["inputs_checked"] += 1
        for answer_id, diverged, stored_verdict in claim.answers:
            answer_row(claim.pair_id, answer_id, stored_verdict, verdict.verdict,
                       answer_reason(diverged, stored_verdict, verdict),
                       {**outcomes, "stored_diverged": diverged, "input": claim.literal})
    for answer_id, (pair_id, reason, detail) in loaded.refused_answers.items():
        answer_row(pair_id, answer_id, None, None, reason, {"mismatch": detail})
    standing = [e for e in equivalents if own[e.pair_id]["reproduced"]]
    recheck = _cross_type(standing, base, seeds, cross_type) if standing else None
    for pair_id, (literal, verdict) in (recheck.refuted.items() if recheck else ()):
        row = own[pair_id]
        row.update(verdict=verdict.verdict, reason="refuted_cross_type", reproduced=False,
                   detail={**row["detail"], "input": literal, "verdict_reason": verdict.reason,
                           "original": _short(verdict.original), "variant": _short(verdict.variant)})
    executions += recheck.executions if recheck else 0
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
              "kinds": {kind: _tally([r for r in pair_rows if loaded.pairs[r["pair_id"]].kind == kind])
                        for kind in kinds},
              "backend": base.backend, "hash_seeds": list(seeds), "run_hash_seeds": sorted(loaded.seeds),
              "executions": executions,
              "cross_type": {"pairs": recheck.checked, "inputs": recheck.inputs, "refuted": len(recheck.refuted),
                             "unsettled": len(recheck.unstable)} if recheck else None,
              "selection": {"sample": sample, "run_id": run_id, "seed": seed, "kinds": list(kinds)},
              "not_reproduced_pairs": sorted(r["pair_id"] for r in pair_rows if not r["reproduced"])}
    batch: dict[str, list[dict]] = {"audits": pair_rows + answer_rows}
    if made_by is None and pair_rows:
        batch["runs"] = [_run_row(audit_run, base, seeds, result, started_at)]
    if pair_rows:
        with _database(warehouse):
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
                 made_by=run_id, audit_run=f"audit-{run_id}", cross_type=NIGHTLY_CROSS_TYPE)


NIGHTLY_CROSS_TYPE = 8
"""Cross-type inputs per sampled equivalent pair in the nightly audit (the generator's fuzzer already tried 8 of
its own; `sinq audit` tries up to RECHECK_INPUTS)."""
