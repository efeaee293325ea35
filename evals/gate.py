"""The promotion gate (issue 13): before a role uses a newly trained adapter, measure it against the incumbent (the
role's promoted adapter, or the base model while none is) on the configured suites, item by item, and decide with
the pure rule of ``game/gate.py``. Both runs are stored (an incumbent run with the same suite, version, items,
model, adapter, mode and sampling is reused, not re-run), and so is the decision with its evidence; promoting or
rejecting is the caller's (:func:`apply_decision`, from tasks/training_steps.py and `sinq eval gate`), so a
measurement never changes what a role uses by itself. Candidate and incumbent always run on one base model, the
candidate's registered one (issue 26): a delta between two base models says nothing about the adapter.

Model-written code (HumanEval completions) runs only in the sandbox pool passed in, never in this process."""

from __future__ import annotations

import math
import time
from pathlib import Path

from sinq.evals.common import EvalError, EvalRun, record
from sinq.evals.compare import compare
from sinq.evals.config import EvalConfig
from sinq.evals.suites import Models, label_of, run_suite, side_of, skip_reason
from sinq.game.gate import SuiteFigures, decide
from sinq.sandbox.pool import WorkerPool
from sinq.warehouse.adapters import (
    AdapterBaseMismatch,
    PromotionRefused,
    force_promote,
    latest_measured,
    promote,
    promoted,
    reject,
    same_model,
    store_decision,
)
from sinq.warehouse.adapters import adapter as adapter_row
from sinq.warehouse.evals import list_evals
from sinq.warehouse.records import content_id
from sinq.warehouse.store import Warehouse


def reusable(warehouse: Warehouse, like: EvalRun, model: str, adapter: str | None) -> dict | None:
    """The newest stored run of ``model`` + ``adapter`` measured exactly as ``like`` was (suite, version, items,
    mode, sampling, seeds), whose figures therefore stand for a re-run."""
    found = [r for r in list_evals(warehouse, like.suite)
             if r["suite_version"] == like.suite_version and r["items_hash"] == like.items_hash()
             and r["model"] == model and r["adapter"] == adapter and r["mode"] == like.mode
             and (r["sampling"] or {}) == like.sampling and (r["seeds"] or {}) == like.seeds]
    return found[-1] if found else None


def gate_config(config: EvalConfig) -> EvalConfig:
    """The suites' settings under the gate: one greedy sample per HumanEval task (binary items: McNemar applies)
    and the gate's completion budget for HumanEval completions and game answers alike."""
    game = config.game.model_copy(update={"max_tokens": min(config.game.max_tokens, config.gate.max_tokens)})
    equivalence = config.equivalence.model_copy(
        update={"max_tokens": min(config.equivalence.max_tokens, config.gate.max_tokens)})
    return config.model_copy(update={"humaneval_samples": 1, "humaneval_k": [1], "max_tokens": config.gate.max_tokens,
                                     "game": game, "equivalence": equivalence})


def _value(metrics: dict, name: str) -> float | None:
    metric = metrics.get(name) or {}
    return metric.get("value")


def one_base(role: str, candidate: dict, incumbent: dict | None, base_model: str | None = None) -> str:
    """The one base model both sides run on: the candidate's registered one; ``base_model`` (--base) only for an
    adapter trained elsewhere that records none, and refused when it disagrees with a recorded one. An incumbent
    adapter of another base model is refused too: no delta compares an adapter with one on another model."""
    recorded = str(candidate["base_model"] or "")
    if base_model and recorded and not same_model(base_model, recorded):
        raise AdapterBaseMismatch(f"--base {base_model} disagrees with {role} adapter {candidate['adapter_id']}'s "
                                  f"recorded base model {recorded}: the gate measures an adapter on its own base",
                                  hint="leave --base out")
    base = recorded or base_model or ""
    if not base:
        raise EvalError(f"{role} adapter {candidate['adapter_id']} records no base model: pass --base MODEL (the "
                        "model it was trained on)")
    if incumbent is not None and incumbent["base_model"] and not same_model(str(incumbent["base_model"]), base):
        raise AdapterBaseMismatch(f"the promoted {role} adapter {incumbent['adapter_id']} is on base model "
                                  f"{incumbent['base_model']}, the candidate {candidate['adapter_id']} on {base}: the "
                                  "gate compares adapters of one base model",
                                  hint=f"sinq models promote {role} {candidate['adapter_id']} --force --reason TEXT "
                                  "switches base models deliberately")
    return base


def run_gate(warehouse: Warehouse, pool: WorkerPool, role: str, adapter_id: str, config: EvalConfig | None = None,
             *, base_model: str | None = None, splits=None, code_version: str | None = None) -> dict:
    """Measure ``adapter_id`` against the incumbent on every configured suite, decide, store the decision; returns
    ``{decision_id, role, adapter_id, incumbent_adapter_id, incumbent_model, passed, reasons, figures, ...}``."""
    config = config or EvalConfig()
    gate = config.gate
    started = time.perf_counter()
    candidate = adapter_row(warehouse, role, adapter_id)
    incumbent = promoted(warehouse, role)
    if incumbent is not None and incumbent["adapter_id"] == adapter_id:
        raise EvalError(f"{adapter_id} is already the promoted {role} adapter: nothing to gate")
    base = one_base(role, candidate, incumbent, base_model)
    cand_model, cand_adapter = side_of({**candidate, "base_model": base}, base)
    inc_model, inc_adapter = side_of(incumbent and {**incumbent, "base_model": base}, base)
    suite_config = gate_config(config)
    compare_config = config.model_copy(update={"confidence": 1 - gate.alpha})
    models = Models(gate.device, config.batch_size)
    figures: list[SuiteFigures] = []
    evidence: dict[str, dict] = {}
    taken: set[str] = set()
    frozen_set: dict | None = None
    if any(spec.suite == "game" for spec in gate.suites):
        from sinq.evals.game import frozen_or_freeze

        frozen_set = frozen_or_freeze(warehouse, config.game, splits)
    for index, spec in enumerate(gate.suites):
        label = label_of(spec, index, taken)
        taken.add(label)
        skipped = skip_reason(spec, frozen_set, role=role, warehouse=warehouse, splits=splits, config=suite_config)
        if skipped:
            figures.append(SuiteFigures(label, spec.role, skipped=skipped))
            evidence[label] = {"role": spec.role, "skipped": skipped}
            continue
        if spec.file is not None and not Path(spec.file).exists():
            raise EvalError(f"[eval.gate] suite {label}: {spec.file} does not exist")
        run = run_suite(spec, pool, suite_config, models, cand_model, cand_adapter, role, splits, warehouse,
                        frozen_set)
        candidate_id = record(warehouse, run, code_version)
        stored = reusable(warehouse, run, inc_model, inc_adapter)
        if stored is not None:
            incumbent_id, incumbent_metrics, reused = stored["eval_id"], stored["metrics"], True
        else:
            inc_run = run_suite(spec, pool, suite_config, models, inc_model, inc_adapter, role, splits, warehouse,
                                frozen_set)
            incumbent_id, incumbent_metrics, reused = record(warehouse, inc_run, code_version), inc_run.metrics, False
        paired = compare(warehouse, incumbent_id, candidate_id, compare_config)
        delta = paired["delta"]
        p_value = paired["mcnemar"]["p_value"] if paired["mcnemar"] else None
        figures.append(SuiteFigures(label, spec.role, delta["value"], delta["low"], delta["high"], p_value,
                                    paired["items"], _value(incumbent_metrics, spec.headline),
                                    _value(run.metrics, spec.headline)))
        evidence[label] = {
            "role": spec.role, "suite": spec.suite, "metric": spec.headline, "items": paired["items"],
            "queries": paired["queries"], "candidate_eval": candidate_id, "incumbent_eval": incumbent_id,
            "incumbent_reused": reused, "candidate": run.metrics.get(spec.headline),
            "incumbent": incumbent_metrics.get(spec.headline), "rate_candidate": paired["rate_b"],
            "rate_incumbent": paired["rate_a"],
            "delta": {k: delta[k] for k in ("value", "low", "high", "confidence", "resamples", "seed")},
            "mcnemar": paired["mcnemar"], "p_value": p_value}
    decision = decide(figures, gate.min_improvement, gate.max_regression, gate.alpha, gate.require_primary)
    result = {
        "decision_id": content_id("gate", role, adapter_id, time.time_ns())[:16], "role": role,
        "adapter_id": adapter_id, "incumbent_adapter_id": incumbent["adapter_id"] if incumbent else None,
        "incumbent_model": inc_model, "passed": decision.passed, "reasons": decision.reasons,
        "figures": {"suites": evidence, "candidate": {"model": cand_model, "adapter": cand_adapter},
                    "incumbent": {"model": inc_model, "adapter": inc_adapter},
                    "base_model": base,
                    "rule": {"min_improvement": gate.min_improvement, "max_regression": gate.max_regression,
                             "alpha": gate.alpha, "require_primary": gate.require_primary},
                    "elapsed_s": round(time.perf_counter() - started, 3)},
        "forced": False, "reason_text": None}
    store_decision(warehouse, result)
    return result


def apply_decision(warehouse: Warehouse, decision: dict) -> dict:
    """Act on a stored decision: promote on a pass (refused, and said, when the role's adapter changed while the
    gate ran: the candidate was not measured against it), mark the candidate rejected otherwise. Returns the
    decision with ``promoted`` and, on a refusal, its reason appended."""
    role, adapter_id = decision["role"], decision["adapter_id"]
    if not decision["passed"]:
        reject(warehouse, role, adapter_id)
        return {**decision, "promoted": False}
    try:
        promote(warehouse, role, adapter_id, decision["decision_id"])
    except PromotionRefused as exc:
        return {**decision, "promoted": False, "reasons": [*decision["reasons"], exc.message]}
    return {**decision, "promoted": True}


def force_promotion(warehouse: Warehouse, role: str, adapter_id: str, reason: str | None) -> dict:
    """A user's override (`sinq models promote --force --reason`): stored as a passed, forced decision (who, when,
    why) that keeps the adapter's last measured figures as its evidence, and promoted in the same transaction."""
    adapter_row(warehouse, role, adapter_id)
    return force_promote(warehouse, role, adapter_id, reason, latest_measured(warehouse, role, adapter_id))


def _num(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def decision_markdown(decision: dict) -> str:
    """The decision as markdown (the Prefect artifact): verdict, one row per suite, the reasons."""
    figures = decision["figures"]
    incumbent = decision["incumbent_adapter_id"] or f"base model {decision['incumbent_model']}"
    rows = []
    for label, f in figures.get("suites", {}).items():
        if f.get("skipped"):
            rows.append(f"| {label} | {f['role']} | - | - | - | - | skipped: {f['skipped']} |")
            continue
        d = f["delta"]
        rows.append(f"| {label} | {f['role']} | {_num(f['rate_incumbent'])} | {_num(f['rate_candidate'])} | "
                    f"{d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | {_num(f['p_value'])} | "
                    f"{f['items']} items, evals {f['incumbent_eval']}{' (reused)' if f['incumbent_reused'] else ''}"
                    f" → {f['candidate_eval']} |")
    reasons = "\n".join(f"- {r}" for r in decision["reasons"])
    promoted_now = decision.get("promoted", decision["passed"])
    verdict = "PROMOTED" if promoted_now else "PASSED, NOT PROMOTED" if decision["passed"] else "REJECTED"
    override = f"`sinq models promote {decision['role']} {decision['adapter_id']} --force --reason TEXT` overrides"
    after = (f"The {decision['role']} now uses `{decision['adapter_id']}`." if promoted_now else
             f"The {decision['role']} goes on with its current adapter; the candidate was measured against "
             f"`{incumbent}`, which is no longer the incumbent ({override})." if decision["passed"] else
             f"The {decision['role']} goes on with `{incumbent}`; the candidate is marked `rejected` ({override}).")
    return f"""# Promotion gate: {decision['role']} adapter `{decision['adapter_id']}` {verdict}

Candidate `{decision['adapter_id']}` against incumbent `{incumbent}` (decision `{decision['decision_id']}`).

| suite | counts as | incumbent | candidate | delta [interval] | McNemar p | evidence |
|---|---|---|---|---|---|---|
{chr(10).join(rows) or '| (none) | | | | | | |'}

{reasons}

{after}
"""
