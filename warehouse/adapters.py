"""Named queries over `adapters`, `training_jobs` and `gate_decisions`: which adapters exist, their status
(registered | promoted | rejected), the gate's decisions with their evidence, and which one each role uses next."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sinq.warehouse.schema import LATEST, current_version
from sinq.warehouse.store import Warehouse

STATUSES = ("registered", "promoted", "rejected")
DECISION_COLUMNS = ("decision_id", "role", "adapter_id", "incumbent_adapter_id", "incumbent_model", "passed",
                    "reasons", "figures", "forced", "reason_text", "created_at")


def list_adapters(warehouse: Warehouse, role: str | None = None) -> list[dict]:
    """Every adapter (oldest first) with its job's kind and metrics, its status and its latest gate decision
    (``gate``: passed, forced, figures, reasons; None when it was never gated)."""
    if not warehouse.path.exists():
        return []
    _migrated(warehouse)
    sql = ("SELECT a.adapter_id, a.role, a.base_model, a.path, a.snapshot_id, a.promoted, a.promoted_at, "
           "a.created_at, coalesce(a.status, 'registered') AS status, j.kind, j.metrics "
           "FROM adapters a LEFT JOIN training_jobs j USING (job_id)"
           + (" WHERE a.role = ?" if role else "") + " ORDER BY a.created_at")
    with warehouse.reading() as con:
        cursor = con.execute(sql, [role] if role else [])
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    latest = {d["adapter_id"]: d for d in gate_decisions(warehouse, role)}  # oldest first: the last one wins
    for row in rows:
        row["gate"] = latest.get(row["adapter_id"])
    return rows


def _migrated(warehouse: Warehouse) -> None:
    """An older file (before ``status`` and ``gate_decisions``) is migrated by one empty write window."""
    with warehouse.reading() as con:
        old = current_version(con) < LATEST
    if old:
        with warehouse.writing():
            pass


def adapter(warehouse: Warehouse, role: str, adapter_id: str) -> dict:
    known = {a["adapter_id"]: a for a in list_adapters(warehouse, role)}
    if adapter_id not in known:
        raise KeyError(f"no {role} adapter {adapter_id!r}; known: {sorted(known)}")
    return known[adapter_id]


def promote(warehouse: Warehouse, role: str, adapter_id: str) -> dict:
    """Make ``adapter_id`` the one ``role`` uses next (exactly one promoted adapter per role); its status becomes
    ``promoted`` (an earlier promoted adapter keeps its status, only ``promoted`` moves)."""
    row = adapter(warehouse, role, adapter_id)
    with warehouse.writing() as con:
        con.execute("UPDATE adapters SET promoted = FALSE WHERE role = ? AND promoted", [role])
        con.execute("UPDATE adapters SET promoted = TRUE, promoted_at = ?, status = 'promoted' WHERE adapter_id = ?",
                    [datetime.now(UTC), adapter_id])
    return {**row, "promoted": True, "status": "promoted"}


def reject(warehouse: Warehouse, role: str, adapter_id: str) -> dict:
    """The gate refused it: status ``rejected``; the role keeps its current adapter."""
    row = adapter(warehouse, role, adapter_id)
    with warehouse.writing() as con:
        con.execute("UPDATE adapters SET status = 'rejected' WHERE adapter_id = ?", [adapter_id])
    return {**row, "status": "rejected"}


def promoted(warehouse: Warehouse, role: str) -> dict | None:
    return next((a for a in list_adapters(warehouse, role) if a["promoted"]), None)


def store_decision(warehouse: Warehouse, decision: dict) -> str:
    """One gate decision (``DECISION_COLUMNS``; reasons and figures as JSON). A re-stored id is a no-op."""
    row = {key: decision.get(key) for key in DECISION_COLUMNS}
    row["created_at"] = row["created_at"] or datetime.now(UTC)
    row["forced"] = bool(row["forced"])
    for key in ("reasons", "figures"):
        row[key] = json.dumps(row[key] if row[key] is not None else ([] if key == "reasons" else {}),
                              sort_keys=True, default=str)
    warehouse.store({"gate_decisions": [row]})
    return row["decision_id"]


def gate_decisions(warehouse: Warehouse, role: str | None = None, adapter_id: str | None = None) -> list[dict]:
    """Stored decisions, oldest first (JSON decoded)."""
    if not warehouse.path.exists():
        return []
    _migrated(warehouse)
    where, params = [], []
    if role:
        where.append("role = ?")
        params.append(role)
    if adapter_id:
        where.append("adapter_id = ?")
        params.append(adapter_id)
    sql = (f"SELECT {', '.join(DECISION_COLUMNS)} FROM gate_decisions"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY created_at, decision_id")
    with warehouse.reading() as con:
        rows = con.execute(sql, params).fetchall()
    decoded = []
    for r in rows:
        row = dict(zip(DECISION_COLUMNS, r, strict=True))
        for key in ("reasons", "figures"):
            if isinstance(row[key], str):
                row[key] = json.loads(row[key])
        decoded.append(row)
    return decoded
