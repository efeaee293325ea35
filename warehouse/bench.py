"""Warehouse benchmark: bulk ingestion of execution rows through the writer, and the per-round view over 1M pairs."""

from __future__ import annotations

import hashlib
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from sinq.warehouse.store import Warehouse


def synthetic_executions(rows: int, salt: str) -> pa.Table:
    now = datetime.now(UTC)
    ids = [hashlib.sha256(f"{salt}:{i}".encode()).hexdigest() for i in range(rows)]
    return pa.table({
        "execution_id": ids,
        "verdict_id": [ids[i - i % 8] for i in range(rows)],
        "side": ["original" if i % 2 else "variant" for i in range(rows)],
        "program_id": [ids[i % 1000] for i in range(rows)],
        "input_id": [ids[i % 500] for i in range(rows)],
        "entry_point": ["f"] * rows,
        "backend": ["local"] * rows,
        "runtime": ["python 3.11"] * rows,
        "hash_seed": [1 + i % 2 for i in range(rows)],
        "kind": ["returned"] * rows,
        "value": [str(i) for i in range(rows)],
        "digest": ids,
        "wall_s": [0.003] * rows,
        "run_id": ["bench"] * rows,
        "created_at": [now] * rows,
    })


SYNTHETIC_GAME = """
INSERT INTO samples (sample_id, round, status, reason, run_id)
SELECT 's' || i, i % 10, CASE WHEN i % 4 = 0 THEN 'rejected' ELSE 'valid' END,
       CASE WHEN i % 4 = 0 THEN 'unstable' END, 'bench' FROM range(?) t(i);
INSERT INTO pairs (pair_id, verdict_id, original_program_id, variant_program_id, input_id, round, run_id)
SELECT 'p' || i, 'v' || i, 'o', 'w', 'x', i % 10, 'bench' FROM range(?) t(i);
INSERT INTO evaluator_answers (answer_id, pair_id, counted, diverged, round)
SELECT 'a' || i, 'p' || (i // 4), true, i % 3 = 0, (i // 4) % 10 FROM range(?) t(i);
INSERT INTO difficulty_labels (pair_id, evaluator_agent_id, round, n_answers, n_failures, difficulty)
SELECT 'p' || i, 'bob', i % 10, 4, i % 5, (i * 7) % 11 FROM range(?) t(i);
"""


BULK_EXECUTIONS = """
INSERT INTO executions (execution_id, verdict_id, side, program_id, input_id, entry_point, backend, runtime,
                        hash_seed, kind, value, value_type, digest, wall_s, run_id, created_at)
SELECT sha256('bulk' || i), sha256('v' || (i // 8)), CASE WHEN i % 2 = 0 THEN 'original' ELSE 'variant' END,
       sha256('p' || (i % 100000)), sha256('x' || (i % 50000)), 'f', 'local', 'python 3.11', 1 + i % 2, 'returned',
       repeat(md5(i::VARCHAR), 1 + i % 4), 'int', sha256('d' || i), 0.003, 'bench', now()
FROM range(?) t(i)
"""


def integrity_check(warehouse: Path, rows: int) -> dict:
    """The cold cost of ``Warehouse.check()`` (paid once per process before its first write) on a warehouse grown
    to ``rows`` executions."""
    from sinq.warehouse import store

    target = Warehouse(warehouse)
    with target.writing() as con:
        con.execute(BULK_EXECUTIONS, [rows])
    store._checked.clear()
    store._scanned.clear()
    started = time.perf_counter()
    target.check()
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    target.check()
    warm = time.perf_counter() - started
    size_mb = warehouse.stat().st_size / 2**20
    return {"check_rows": rows, "check_file_mb": round(size_mb), "check_seconds": round(seconds, 3),
            "check_mb_per_s": round(size_mb / seconds), "check_again_seconds": round(warm, 4)}


def run_bench(ingest_rows: int = 200_000, pairs: int = 1_000_000, directory: Path | None = None,
              check_rows: int = 0) -> dict:
    with tempfile.TemporaryDirectory(prefix="sinq-db-bench-", dir=directory) as tmp:
        warehouse = Warehouse(Path(tmp) / "bench.duckdb")
        table = synthetic_executions(ingest_rows, "bench")
        with warehouse.writing():
            pass
        started = time.perf_counter()
        with warehouse.writing() as con:
            inserted = warehouse._insert(con, "executions", table)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        with warehouse.writing() as con:
            again = warehouse._insert(con, "executions", table)
        rerun_s = time.perf_counter() - started
        with warehouse.writing() as con:
            for statement in SYNTHETIC_GAME.strip().split(";\n"):
                if statement.strip():
                    count = pairs * 4 if "evaluator_answers" in statement else pairs
                    con.execute(statement, [count])
        started = time.perf_counter()
        with warehouse.reading() as con:
            stats = con.execute("SELECT * FROM round_stats ORDER BY round").fetchall()
        query_s = time.perf_counter() - started
        checked = integrity_check(Path(tmp) / "bench.duckdb", check_rows) if check_rows else {}
    return checked | {
        "ingest_rows_per_s": round(inserted / ingest_s),
        "query_seconds": round(query_s, 3),
        "rows": inserted,
        "rerun_duplicates": again,
        "rerun_seconds": round(rerun_s, 3),
        "pairs": pairs,
        "rounds": len(stats),
    }
