"""Two stored runs of one suite compared on the queries both scored: the delta of the rate with a seeded paired
bootstrap interval over items (an item's queries move together), and the exact McNemar p-value where every item is
one binary query (the ``loglikelihood`` mode, pass@1 with one sample)."""

from __future__ import annotations

from collections import defaultdict

from sinq.evals.common import EvalError
from sinq.evals.config import EvalConfig
from sinq.game.stats import discordant, mcnemar_exact, paired_bootstrap
from sinq.warehouse.evals import paired_outcomes, read_eval
from sinq.warehouse.store import Warehouse


def _run(warehouse: Warehouse, eval_id: str) -> dict:
    try:
        return read_eval(warehouse, eval_id, results=False)
    except KeyError:
        raise EvalError(f"no eval run {eval_id!r} in {warehouse.path}", hint="sinq eval list shows the stored runs")


def compare(warehouse: Warehouse, eval_a: str, eval_b: str, config: EvalConfig | None = None) -> dict:
    """B against A: ``delta`` = rate(B) - rate(A) on the shared queries, with its interval and, for binary items,
    McNemar's p-value."""
    config = config or EvalConfig()
    a, b = _run(warehouse, eval_a), _run(warehouse, eval_b)
    if a["suite"] != b["suite"]:
        raise EvalError(f"{eval_a} is {a['suite']} and {eval_b} is {b['suite']}: only runs of one suite compare")
    rows = [r for r in paired_outcomes(warehouse, eval_a, eval_b)
            if r["correct_a"] is not None and r["correct_b"] is not None]
    if not rows:
        raise EvalError(f"{eval_a} and {eval_b} share no scored query (different items or modes)")
    per_item: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for r in rows:
        per_item[r["item_id"]].append((bool(r["correct_a"]), bool(r["correct_b"])))
    rate_a = [sum(x for x, _ in v) / len(v) for v in per_item.values()]
    rate_b = [sum(y for _, y in v) / len(v) for v in per_item.values()]
    delta, low, high = paired_bootstrap(rate_a, rate_b, config.bootstrap_resamples, config.confidence, config.seed)
    result = {
        "suite": a["suite"], "a": _side(a), "b": _side(b), "queries": len(rows), "items": len(per_item),
        "rate_a": sum(r["correct_a"] for r in rows) / len(rows),
        "rate_b": sum(r["correct_b"] for r in rows) / len(rows),
        "delta": {"value": delta, "low": low, "high": high, "interval": "paired bootstrap over items",
                  "resamples": config.bootstrap_resamples, "seed": config.seed, "confidence": config.confidence},
        "mcnemar": None,
    }
    if all(len(v) == 1 for v in per_item.values()):
        a_only, b_only = discordant([v[0][0] for v in per_item.values()], [v[0][1] for v in per_item.values()])
        result["mcnemar"] = {"a_only": a_only, "b_only": b_only, "p_value": mcnemar_exact(a_only, b_only)}
    return result


def _side(run: dict) -> dict:
    return {key: run[key] for key in ("eval_id", "model", "adapter", "mode", "n", "metrics", "created_at")} | {
        "created_at": str(run["created_at"])}
