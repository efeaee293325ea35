"""Stored equivalent pairs re-checked on inputs of other literal types than the ones they were fuzzed on (issue 26).

An equivalent label must hold for every input the verdict engine accepts (DESIGN.md §3), but the audit replays only
the inputs a pair was fuzzed on, so a pair made by a rule whose soundness hung on the seeds' types (before issue 26)
passes it. ``recheck_stored`` reads the standing equivalent pairs (or these ids), shapes cross-type inputs from each
one's stored inputs (``agents.equivalents.cross_type_inputs``: a dict with int keys where a list was, None, a set,
bytes, -0.0, ...) and settles them under the full verdict rules in one batch; a pair with a ``diverges`` is refuted,
with its input (``sinq verify`` on it says ``diverges`` too). What to do with a refuted pair (an audit row that takes
it out of ``equivalent_pairs``) is the audit's business: this module only reads the warehouse.
"""

from __future__ import annotations

from sinq.agents.equivalents import RECHECK_INPUTS, Recheck, StoredEquivalent, recheck_equivalents
from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.pool import WorkerPool
from sinq.warehouse import queries
from sinq.warehouse.store import Warehouse


def stored_equivalents(warehouse: Warehouse, pair_ids: list[str] | None = None,
                       run_id: str | None = None) -> list[StoredEquivalent]:
    """The standing equivalent pairs (``all_pairs`` status ``equivalent``, of one run or all) or these ids, each with
    its programs and every stored input it was fuzzed on (its own input first), in pair id order."""
    ids = queries.standing_pair_ids(warehouse, "equivalent", run_id) if pair_ids is None else pair_ids
    if not ids:
        return []
    facts = queries.claims_behind(warehouse, ids)
    verdicts = facts.get("verdicts", {})
    out: list[StoredEquivalent] = []
    for pair in facts["pairs"]:
        if pair.get("pair_kind") != "equivalent":
            continue
        evidence = facts.get("evidence", {}).get(pair["pair_id"]) or {}
        literals = [pair.get("literal")] + [verdicts.get(v, {}).get("literal")
                                            for v in evidence.get("verdict_ids") or []]
        inputs = list(dict.fromkeys(x for x in literals if x))
        out.append(StoredEquivalent(pair["pair_id"], pair["original"], pair["variant"], pair["entry_point"],
                                    inputs))
    return out


def recheck_stored(warehouse: Warehouse, backend: WorkerPool, pair_ids: list[str] | None = None,
                   run_id: str | None = None, config: SandboxConfig | None = None,
                   per_pair: int | None = RECHECK_INPUTS) -> Recheck:
    """Re-check stored equivalent pairs on cross-type inputs (see the module docstring); ``config``: the verdict
    rules (default: the backend's)."""
    return recheck_equivalents(stored_equivalents(warehouse, pair_ids, run_id), backend, config, per_pair)
