"""The promotion gate (issue 13): before a role uses a newly trained adapter, measure it against the incumbent (the
role's promoted adapter, or the base model while none is) on the configured suites, item by item, and decide with
the pure rule of ``game/gate.py``. Both runs are stored (an incumbent run with the same suite, version, items,
model, adapter, mode and sampling is reused, not re-run), and so is the decision with its evidence; promoting or
rejecting is the caller's (tasks/training_steps.py), so a measurement never changes what a role uses by itself.

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
from sinq.warehouse.adapters import adapter as adapter_row
from sinq.warehouse.adapters import promoted, store_decision
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
    base = base_model or str(candidate["base_model"] or "")
    if not base:
        raise EvalError(f"adapter {adapter_id} names no base model: pass base_model")
    cand_model, cand_adapter = side_of(candidate, base)
    inc_model, inc_adapter = side_of(incumbent, base)
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
                    "rule": {"min_improvement": gate.min_improvement, "max_regression": gate.max_regression,
                             "alpha": gate.alpha, "require_primary": gate.require_primary},
                    "elapsed_s": round(time.perf_counter() - started, 3)},
        "forced": False, "reason_text": None}
    store_decision(warehouse, result)
    return result


def force_decision(warehouse: Warehouse, role: str, adapter_id: str, reason: str) -> dict:
    """A user's override (`sinq models promote --force --reason`): stored as a passed, forced decision that keeps
    the last measured figures as its evidence."""
    from sinq.warehouse.adapters import gate_decisions

    adapter_row(warehouse, role, adapter_id)
    incumbent = promoted(warehouse, role)
    last = next(iter(reversed(gate_decisions(warehouse, role, adapter_id))), None)
    result = {"decision_id": content_id("gate-forced", role, adapter_id, time.time_ns())[:16], "role": role,
              "adapter_id": adapter_id, "incumbent_adapter_id": incumbent["adapter_id"] if incumbent else None,
              "incumbent_model": last["incumbent_model"] if last else None, "passed": True,
              "reasons": [f"forced by the user: {reason}"] + ([f"overrides {last['decision_id']}"] if last else []),
              "figures": last["figures"] if last else {}, "forced": True, "reason_text": reason}
    store_decision(warehouse, result)
    return result


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
    verdict = "PROMOTED" if decision["passed"] else "REJECTED"
    after = (f"The {decision['role']} now uses `{decision['adapter_id']}`." if decision["passed"] else
             f"The {decision['role']} goes on with `{incumbent}`; the candidate is marked `rejected` "
             f"(`sinq models promote {decision['role']} {decision['adapter_id']} --force --reason TEXT` overrides).")
    return f"""# Promotion gate: {decision['role']} adapter `{decision['adapter_id']}` {verdict}

Candidate `{decision['adapter_id']}` against incumbent `{incumbent}` (decision `{decision['decision_id']}`).

| suite | counts as | incumbent | candidate | delta [interval] | McNemar p | evidence |
|---|---|---|---|---|---|---|
{chr(10).join(rows) or '| (none) | | | | | | |'}

{reasons}

{after}
"""
