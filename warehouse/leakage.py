"""The pairs a surface-only classifier reads (issue 27, `sinq train bench-leakage`): both kinds side by side, the
standing ones only (``verified_pairs`` and ``equivalent_pairs``, so duplicates, refuted and unreproduced pairs stay
out as they do of training). Its own module so the SQL stays behind warehouse/ without touching shared files."""

from __future__ import annotations

from sinq.warehouse.queries import _dicts, check_run
from sinq.warehouse.schema import LATEST, current_version
from sinq.warehouse.store import Warehouse

_PAIRS = """
SELECT pair_id, problem_id, 'inequivalent' AS kind, original_code, variant_code, run_id, round, split
FROM verified_pairs WHERE ($run IS NULL OR run_id = $run)
UNION ALL
SELECT pair_id, problem_id, 'equivalent' AS kind, original_code, variant_code, run_id, round, split
FROM equivalent_pairs WHERE ($run IS NULL OR run_id = $run)
ORDER BY pair_id
"""


def leakage_pairs(warehouse: Warehouse, run_id: str | None = None) -> list[dict]:
    """Every standing pair of both kinds (pair_id, problem_id, kind, original_code, variant_code, run_id, round,
    split), in pair_id order; only those ``run_id`` made when given. An older warehouse is migrated first (the views
    of both kinds need schema 7), a missing one is refused as everywhere else."""
    with warehouse.reading() as con:
        version = current_version(con)
    if version < LATEST:
        warehouse.store({})
    if run_id is not None:
        check_run(warehouse, run_id)
    with warehouse.reading() as con:
        return _dicts(con.execute(_PAIRS, {"run": run_id}))
