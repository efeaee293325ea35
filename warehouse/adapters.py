"""Named queries over `adapters` and `training_jobs`: which adapters exist and which one each role uses next."""

from __future__ import annotations

from datetime import UTC, datetime

from sinq.warehouse.store import Warehouse


def list_adapters(warehouse: Warehouse, role: str | None = None) -> list[dict]:
    if not warehouse.path.exists():
        return []
    sql = ("SELECT a.adapter_id, a.role, a.base_model, a.path, a.snapshot_id, a.promoted, a.promoted_at, "
           "a.created_at, j.kind, j.metrics FROM adapters a LEFT JOIN training_jobs j USING (job_id)"
           + (" WHERE a.role = ?" if role else "") + " ORDER BY a.created_at")
    with warehouse.reading() as con:
        cursor = con.execute(sql, [role] if role else [])
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def promote(warehouse: Warehouse, role: str, adapter_id: str) -> dict:
    """Make ``adapter_id`` the one ``role`` uses next (exactly one promoted adapter per role)."""
    known = {a["adapter_id"]: a for a in list_adapters(warehouse, role)}
    if adapter_id not in known:
        raise KeyError(f"no {role} adapter {adapter_id!r}; known: {sorted(known)}")
    with warehouse.writing() as con:
        con.execute("UPDATE adapters SET promoted = FALSE WHERE role = ? AND promoted", [role])
        con.execute("UPDATE adapters SET promoted = TRUE, promoted_at = ? WHERE adapter_id = ?",
                    [datetime.now(UTC), adapter_id])
    return {**known[adapter_id], "promoted": True}


def promoted(warehouse: Warehouse, role: str) -> dict | None:
    return next((a for a in list_adapters(warehouse, role) if a["promoted"]), None)
