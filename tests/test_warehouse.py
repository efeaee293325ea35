"""The warehouse on real DuckDB files, with real processes for the one-writer/many-readers and kill -9 rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from sinq.sandbox import Pair, verify_many
from sinq.warehouse.records import merge, pair_rows, verdict_rows
from sinq.warehouse.schema import LATEST
from sinq.warehouse.store import Warehouse, WarehouseError

ROOT = Path(__file__).resolve().parents[1]

WRITER = """
import sys, time
from datetime import datetime, UTC
sys.path.insert(0, {root!r})
from sinq.warehouse.store import Warehouse
w = Warehouse({path!r})
batches, size = int(sys.argv[1]), int(sys.argv[2])
for b in range(batches):
    rows = [{{"execution_id": f"e{{b}}-{{i}}", "kind": "returned", "value": str(i), "run_id": "writer",
              "created_at": datetime.now(UTC)}} for i in range(size)]
    w.store({{"executions": rows}})
    print(b, flush=True)
"""


def sinq(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sinq.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "SINQ_CONFIG": ""})


def writer(path: Path, batches: int, size: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), path=str(path)), str(batches),
                             str(size)], stdout=subprocess.PIPE, text=True)


def count(path: Path, table: str = "executions") -> int:
    return Warehouse(path).query(f"SELECT count(*) FROM {table}")[1][0][0]


def test_migrations_apply_once_and_views_exist(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.store({})
    warehouse.store({})
    info = warehouse.info()
    assert info["schema_version"] == LATEST
    assert info["tables"]["schema_version"] == LATEST
    assert {"verified_pairs", "round_stats", "rejection_reasons"} <= set(info["views"])
    columns, _ = warehouse.query("SELECT * FROM verified_pairs")
    assert columns == ["pair_id", "problem_id", "source", "entry_point", "original_code", "variant_code",
                       "diverging_input", "original_outcome", "variant_outcome", "generator", "round", "difficulty",
                       "evaluator", "run_id", "created_at", "split", "flags"]
    assert {"all_pairs", "duplicate_pairs", "latest_audit"} <= set(info["views"])


def test_a_version_1_database_migrates_and_keeps_its_pairs(tmp_path: Path) -> None:
    """A warehouse written before the hygiene columns existed upgrades in place; its pairs stay verified."""
    from sinq.warehouse.schema import MIGRATIONS

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR, "
                "applied_at TIMESTAMP DEFAULT current_timestamp)")
    con.execute(MIGRATIONS[0].sql)
    con.execute("INSERT INTO schema_version (version, description) VALUES (1, 'v1')")
    con.execute("INSERT INTO programs VALUES ('o', 'def f(x):\n    return x\n', now()), "
                "('v', 'def f(x):\n    return -x\n', now())")
    con.execute("INSERT INTO inputs VALUES ('i', '{''x'': 1}', '{\"x\": 1}', now())")
    con.execute("INSERT INTO verdicts (verdict_id, verdict, reason) VALUES ('vd', 'diverges', 'different_value')")
    con.execute("INSERT INTO pairs (pair_id, verdict_id, original_program_id, variant_program_id, input_id) "
                "VALUES ('p', 'vd', 'o', 'v', 'i')")
    con.close()
    warehouse = Warehouse(path)
    warehouse.store({})
    assert warehouse.info()["schema_version"] == LATEST
    _, rows = warehouse.query("SELECT pair_id, split, flags FROM verified_pairs")
    assert rows == [("p", "train", "[]")]
    _, rows = warehouse.query("SELECT status, duplicate_of FROM all_pairs")
    assert rows == [("verified", None)]


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({})
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')")
    con.close()
    before = path.read_bytes()
    with pytest.raises(WarehouseError, match=rf"99.*\({LATEST}\)"):
        Warehouse(path).store({"runs": []})
    with pytest.raises(WarehouseError, match="99"):
        Warehouse(path).info()
    assert path.read_bytes() == before


def test_corrupt_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.duckdb"
    path.write_bytes(b"this is not a database" * 100)
    done = sinq("db", "info", "--db", str(path))
    assert done.returncode == 4  # a warehouse problem (README: exit codes)
    assert "broken.duckdb" in done.stderr and "Traceback" not in done.stderr


def test_a_file_locked_for_too_long_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({})
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        config = tmp_path / "sinq.toml"
        config.write_text("[warehouse]\nlock_timeout_s = 1.0\n")
        done = sinq("sql", "SELECT 1", "--db", str(path), "--config", str(config))
        assert done.returncode == 4
        assert "locked" in done.stderr and "Traceback" not in done.stderr
    finally:
        holder.kill()
        holder.wait()


def test_inputs_keep_their_exact_literal_and_json_only_when_exact() -> None:
    from sinq.warehouse.records import exact_json

    assert json.loads(exact_json("{'x': [1, 2], 's': 'a'}")) == {"x": [1, 2], "s": "a"}
    assert exact_json("{'x': (1, 2)}") is None
    assert exact_json("{'x': {1, 2}}") is None
    assert exact_json("{'x': b'a'}") is None


def test_sql_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({})
    for statement in ("DELETE FROM runs", "DROP TABLE runs", "ATTACH 'x.duckdb'", "COPY runs TO 'x.csv'",
                      "SELECT 1; DELETE FROM runs"):
        done = sinq("sql", statement, "--db", str(path))
        assert done.returncode == 2 and "read-only" in done.stderr, statement  # a bad argument
    done = sinq("sql", "SELECT count(*) AS n FROM runs", "--db", str(path), "--format", "json")
    assert json.loads(done.stdout) == [{"n": 0}]


def test_storing_verdicts_is_idempotent(tmp_path: Path, local_backend) -> None:
    pairs = [Pair("a", "def f(x):\n    return x\n", "def f(x):\n    return -x\n", "f", {"x": 2}),
             Pair("b", "def f(x):\n    return x\n", "def f(x):\n    return x\n", "f", {"x": 2})]
    verdicts = verify_many(pairs, local_backend)
    batch = merge(*[verdict_rows(p, v, "run-1", "strict") for p, v in zip(pairs, verdicts, strict=True)])
    batch["pairs"] = pair_rows(batch, generator="test")
    warehouse = Warehouse(tmp_path / "w.duckdb")
    first = warehouse.store(batch)
    again = warehouse.store(batch)
    assert first["verdicts"] == 2 and first["pairs"] == 1
    assert first["executions"] == sum(v.executions for v in verdicts)
    assert all(n == 0 for n in again.values())
    _, rows = warehouse.query("SELECT count(*), count(DISTINCT hash_seed), min(backend), min(runtime) "
                              "FROM executions")
    assert rows[0][0] == first["executions"] and rows[0][1] == 2 and rows[0][2] == "local" and rows[0][3]
    _, pairs_view = warehouse.query("SELECT entry_point, diverging_input, variant_outcome->>'value' FROM "
                                    "verified_pairs")
    assert pairs_view == [("f", "{'x': 2}", "-2")]


def test_killed_writer_leaves_whole_batches_and_a_rerun_completes(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    process = writer(path, batches=400, size=500)
    assert process.stdout is not None
    for _ in range(5):
        process.stdout.readline()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stored = count(path)
    assert stored % 500 == 0 and stored >= 2500
    rerun = writer(path, batches=12, size=500)
    assert rerun.wait(timeout=120) == 0
    assert count(path) == max(stored, 12 * 500)
    _, rows = Warehouse(path).query("SELECT count(*) - count(DISTINCT execution_id) FROM executions")
    assert rows[0][0] == 0


def test_sql_answers_while_a_run_is_writing(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({})
    process = writer(path, batches=2000, size=2000)
    seen = []
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and len(seen) < 6 and time.monotonic() < deadline:
            done = sinq("sql", "SELECT count(*) AS n FROM executions", "--db", str(path), "--format", "json")
            assert done.returncode == 0, done.stderr
            seen.append(json.loads(done.stdout)[0]["n"])
        assert len(seen) >= 3, "the writer finished before the readers could overlap it"
        assert seen == sorted(seen)
        assert process.poll() is None or seen[-1] > 0
    finally:
        process.kill()
        process.wait()


def test_verify_with_db_records_a_run_and_export_loads_with_datasets(tmp_path: Path, local_backend) -> None:
    import datasets

    source = tmp_path / "pairs.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "original": "def f(x):\n    return x\n", "variant": "def f(x):\n    return x * 2\n",
         "entry_point": "f", "input": {"x": 3}},
        {"id": "b", "original": "def f(x):\n    return x\n", "variant": "def f(x):\n    return x\n",
         "entry_point": "f", "input": {"x": 3}},
    ]) + "\n")
    db = tmp_path / "w.duckdb"
    done = sinq("verify", str(source), "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    _, runs = Warehouse(db).query("SELECT run_id, status, config_hash, code_version FROM runs")
    assert len(runs) == 1 and runs[0][1] == "finished" and runs[0][2] and runs[0][3]
    out = tmp_path / "export"
    done = sinq("export", str(out), "--db", str(db), "--run", runs[0][0])
    assert done.returncode == 0, done.stderr
    dataset = datasets.load_dataset("parquet", data_files=str(out / "verified_pairs.parquet"))["train"]
    assert dataset.num_rows == 1
    assert dataset[0]["variant_code"] == "def f(x):\n    return x * 2\n"
    assert json.loads(dataset[0]["variant_outcome"])["value"] == "6"
    card = (out / "README.md").read_text()
    assert "pairs: 1" in card and runs[0][0] in card
    done = sinq("export", str(tmp_path / "j"), "--db", str(db), "--format", "jsonl")
    assert done.returncode == 0
    assert datasets.load_dataset("json", data_files=str(tmp_path / "j" / "verified_pairs.jsonl"))["train"].num_rows == 1


def test_db_bench_prints_its_figures() -> None:
    done = sinq("db", "bench", "--json", "--rows", "20000", "--pairs", "20000", "--check-rows", "50000")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"ingest_rows_per_s", "query_seconds", "rows"} <= set(result)
    assert result["check_rows"] == 50000 and result["check_file_mb"] > 0 and result["check_seconds"] > 0
    assert result["check_again_seconds"] < result["check_seconds"], "a checked, unchanged file is not read again"
    assert result["rows"] == 20000 and result["rerun_duplicates"] == 0 and result["ingest_rows_per_s"] > 0
