"""Named queries over ``training_jobs`` for reaping them like runs (training/jobs.py decides who is dead): the
heartbeat, the running jobs with where they live, marking dead ones ``crashed``, and completing a job in the
transaction that registers its adapter."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from sinq.warehouse.store import Warehouse


def beat_job(warehouse: Warehouse, job_id: str, now: datetime) -> None:
    with warehouse.writing() as con:
        con.execute("UPDATE training_jobs SET heartbeat_at = ? WHERE job_id = ? AND status = 'running'", [now, job_id])


def running_jobs(warehouse: Warehouse, silent_since: datetime) -> list[dict]:
    """Every ``running`` job: job_id, run_id, host, pid, output_path and whether it has been silent since
    ``silent_since``. A file from before migration 11 (reading never migrates) has only ``started_at``."""
    if not warehouse.path.exists():
        return []
    with warehouse.reading() as con:
        has_identity = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                                   "'training_jobs' AND column_name = 'pid'").fetchall()[0][0]
        columns = ("host, pid, output_path, coalesce(heartbeat_at, started_at) < ? AS silent" if has_identity else
                   "NULL AS host, NULL AS pid, NULL AS output_path, started_at < ? AS silent")
        cursor = con.execute(f"SELECT job_id, run_id, {columns} FROM training_jobs WHERE status = 'running'",
                             [silent_since])
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def mark_jobs_crashed(warehouse: Warehouse, job_ids: list[str], message: str, now: datetime) -> set[str]:
    """Only jobs still ``running`` change (status, finished_at, the message as ``metrics.error``). Returns those of
    ``job_ids`` that have a registered adapter."""
    with warehouse.writing() as con:
        con.execute("UPDATE training_jobs SET status = 'crashed', finished_at = ?, metrics = ? WHERE status = "
                    "'running' AND job_id IN (SELECT unnest(?))", [now, json.dumps({"error": message}), job_ids])
        return {r[0] for r in con.execute("SELECT job_id FROM adapters WHERE job_id IN (SELECT unnest(?))",
                                          [job_ids]).fetchall()}


def complete_job_in(con: duckdb.DuckDBPyConnection, job_id: str, metrics: dict, now: datetime) -> None:
    """Inside a write already open (the one that stores the job's adapter row)."""
    con.execute("UPDATE training_jobs SET status = 'completed', metrics = ?, finished_at = ? WHERE job_id = ?",
                [json.dumps(metrics), now, job_id])
