"""Named queries over `adapters`, `training_jobs` and `gate_decisions`: which adapters exist, their status
(registered | promoted | rejected), the gate's decisions with their evidence, and which one each role uses next.

Nothing is promoted without evidence (issue 26): :func:`promote` needs a passed gate decision whose incumbent is
still the role's adapter, checked in the same write transaction that moves ``promoted``; :func:`force_promote` is
the user's override and stores itself as a forced decision (who, when, why) in that transaction."""

from __future__ import annotations

import getpass
import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from sinq.game.errors import SinqError
from sinq.warehouse.records import content_id
from sinq.warehouse.schema import LATEST, current_version
from sinq.warehouse.store import Warehouse

STATUSES = ("registered", "promoted", "rejected")
DECISION_COLUMNS = ("decision_id", "role", "adapter_id", "incumbent_adapter_id", "incumbent_model", "passed",
                    "reasons", "figures", "forced", "reason_text", "decided_by", "created_at")


class PromotionRefused(SinqError):
    """A promotion without evidence for it (never gated, rejected, measured against another incumbent than the
    role's current one, forced without a reason): nothing changed. Exit 2, like a bad argument."""

    exit_code = 2


class AdapterBaseMismatch(SinqError):
    """An adapter meant for one base model asked to run on another (the gate's --base, a role's configured model):
    its figures say nothing about that model, and a LoRA on the wrong base is garbage or a shape error. Exit 2."""

    exit_code = 2


def decided_by() -> str:
    """``user@host`` of this process: whom a stored decision is owed to."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry for the uid)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def same_model(a: str | Path, b: str | Path) -> bool:
    """Two names of one base model: equal names, or two paths to one folder (``./m`` and ``/abs/m``)."""
    if str(a) == str(b) or str(a).rstrip("/") == str(b).rstrip("/"):
        return True
    first, second = Path(a).expanduser(), Path(b).expanduser()
    try:
        return first.exists() and second.exists() and first.samefile(second)
    except OSError:
        return False


def check_base(row: dict, model: str | None, role: str, what: str = "model", served: bool = False) -> None:
    """Refuse to run adapter ``row`` on ``model`` when it records another base model (a row without one, or no
    model, cannot be checked and passes). ``served``: ``model`` is a name a server gives the weights (vLLM's
    --served-model-name), which also agrees with the recorded folder's own name."""
    recorded = row.get("base_model")
    if not recorded or not model or same_model(str(recorded), model):
        return
    if served and Path(str(recorded).rstrip("/")).name == model:
        return
    raise AdapterBaseMismatch(
        f"{role} adapter {row['adapter_id']} was trained on {recorded}, not on {model} ({what}): refused",
        hint=f"use {recorded} as the {role}'s model, or promote an adapter trained on {model}")


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


def _current(con, role: str) -> str | None:
    found = con.execute("SELECT adapter_id FROM adapters WHERE role = ? AND promoted", [role]).fetchall()
    return found[0][0] if found else None


def _make_promoted(con, role: str, adapter_id: str, base_model: str | None) -> None:
    """Exactly one promoted adapter per role; an adapter gated on a given base (no recorded one) records it."""
    con.execute("UPDATE adapters SET promoted = FALSE WHERE role = ? AND promoted", [role])
    con.execute("UPDATE adapters SET promoted = TRUE, promoted_at = ?, status = 'promoted', "
                "base_model = coalesce(base_model, ?) WHERE adapter_id = ?",
                [datetime.now(UTC), base_model, adapter_id])


def promote(warehouse: Warehouse, role: str, adapter_id: str, decision_id: str) -> dict:
    """Make ``adapter_id`` the one ``role`` uses next on the evidence of gate decision ``decision_id``: it must be
    this role's and adapter's, passed, and measured against the adapter the role uses *now* (or the base model while
    none is) — read in the write transaction that promotes, so a promotion that happened while the gate ran is
    never skipped over. Raises PromotionRefused (nothing changed) otherwise. Its status becomes ``promoted`` (an
    earlier promoted adapter keeps its status, only ``promoted`` moves)."""
    row = adapter(warehouse, role, adapter_id)
    with warehouse.writing() as con:
        found = con.execute("SELECT role, adapter_id, passed, incumbent_adapter_id, figures FROM gate_decisions "
                            "WHERE decision_id = ?", [decision_id]).fetchall()
        if not found:
            raise PromotionRefused(f"no gate decision {decision_id}: {role} adapter {adapter_id} not promoted")
        d_role, d_adapter, passed, measured, figures = found[0]
        if (d_role, d_adapter) != (role, adapter_id):
            raise PromotionRefused(f"gate decision {decision_id} is about {d_role} adapter {d_adapter}, not "
                                   f"{role} adapter {adapter_id}: not promoted")
        if not passed:
            raise PromotionRefused(f"gate decision {decision_id} did not pass {role} adapter {adapter_id}: "
                                   "not promoted")
        now = _current(con, role)
        if now == adapter_id:
            return {**row, "promoted": True, "status": "promoted"}
        if now != measured:
            raise PromotionRefused(
                f"{role} adapter {adapter_id} not promoted: gate decision {decision_id} measured it against "
                f"{measured or 'the base model'}, but the {role} now uses {now or 'the base model'} (promoted "
                "while the gate ran)", hint=f"gate it again against the new incumbent: sinq eval gate {role} "
                f"{adapter_id}")
        base = (json.loads(figures) if isinstance(figures, str) else figures or {}).get("base_model")
        _make_promoted(con, role, adapter_id, base)
    return {**row, "promoted": True, "status": "promoted", "base_model": row["base_model"] or base}


def force_promote(warehouse: Warehouse, role: str, adapter_id: str, reason: str | None,
                  evidence: dict | None = None, decision_id: str | None = None) -> dict:
    """A promotion without a passing gate decision (`sinq models promote --force --reason`, or ``[eval.gate]
    enabled = false``): refused without a non-blank ``reason``; otherwise stored as a passed, forced decision (who,
    when, why, and the incumbent it replaced, read in the same transaction) that keeps ``evidence``'s figures (the
    adapter's last decision, if any) and then promoted. Returns the stored decision."""
    reason = (reason or "").strip()
    if not reason:
        raise PromotionRefused(f"{role} adapter {adapter_id} not promoted: a forced promotion needs a reason "
                               "(--reason TEXT, not blank), stored with the decision")
    adapter(warehouse, role, adapter_id)  # an unknown one: KeyError
    created = datetime.now(UTC)
    decision = {"decision_id": decision_id or content_id("gate-forced", role, adapter_id, time.time_ns())[:16],
                "role": role, "adapter_id": adapter_id,
                "incumbent_model": evidence["incumbent_model"] if evidence else None,
                "passed": True, "figures": evidence["figures"] if evidence else {}, "forced": True,
                "reason_text": reason, "decided_by": decided_by(), "created_at": created}
    with warehouse.writing() as con:
        decision["incumbent_adapter_id"] = _current(con, role)
        decision["reasons"] = [f"forced by {decision['decided_by']}: {reason}"] + (
            [f"overrides gate decision {evidence['decision_id']}"] if evidence else ["never gated"])
        Warehouse._insert(con, "gate_decisions", [_decision_row(decision)])
        if decision["incumbent_adapter_id"] != adapter_id:
            _make_promoted(con, role, adapter_id, (decision["figures"] or {}).get("base_model"))
    return decision


def reject(warehouse: Warehouse, role: str, adapter_id: str) -> dict:
    """The gate refused it: status ``rejected``; the role keeps its current adapter."""
    row = adapter(warehouse, role, adapter_id)
    with warehouse.writing() as con:
        con.execute("UPDATE adapters SET status = 'rejected' WHERE adapter_id = ?", [adapter_id])
    return {**row, "status": "rejected"}


def promoted(warehouse: Warehouse, role: str) -> dict | None:
    return next((a for a in list_adapters(warehouse, role) if a["promoted"]), None)


def _decision_row(decision: dict) -> dict:
    """A decision as its ``gate_decisions`` row: reasons and figures as JSON, who and when filled in."""
    row = {key: decision.get(key) for key in DECISION_COLUMNS}
    row["created_at"] = row["created_at"] or datetime.now(UTC)
    row["decided_by"] = row["decided_by"] or decided_by()
    row["forced"] = bool(row["forced"])
    for key in ("reasons", "figures"):
        row[key] = json.dumps(row[key] if row[key] is not None else ([] if key == "reasons" else {}),
                              sort_keys=True, default=str)
    return row


def store_decision(warehouse: Warehouse, decision: dict) -> str:
    """One gate decision (``DECISION_COLUMNS``; reasons and figures as JSON). A re-stored id is a no-op."""
    row = _decision_row(decision)
    warehouse.store({"gate_decisions": [row]})
    return row["decision_id"]


def latest_measured(warehouse: Warehouse, role: str, adapter_id: str) -> dict | None:
    """The adapter's newest decision made by the gate (not a forced one): the evidence a plain promotion needs."""
    return next((d for d in reversed(gate_decisions(warehouse, role, adapter_id)) if not d["forced"]), None)


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
