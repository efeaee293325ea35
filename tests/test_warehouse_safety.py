"""Issue 12, the warehouse's part: exports that never clobber, a damaged file refused untouched, the real cause of a
failed write, user queries that never fail a nightly write, and a `sinq sql` that reads only the warehouse and
streams. Real DuckDB files, real processes, a real full disk (tmpfs) and a real unwritable folder (another user)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinq.warehouse.store import Warehouse, WarehouseError
from tests.conftest import missing

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [
    {"id": "a", "original": "def f(x):\n    return x\n", "variant": "def f(x):\n    return x * 2\n",
     "entry_point": "f", "input": {"x": 3}},
    {"id": "b", "original": "def g(s):\n    return s.upper()\n", "variant": "def g(s):\n    return s.lower()\n",
     "entry_point": "g", "input": {"s": "Ab"}},
]


def sinq(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sinq.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "SINQ_CONFIG": ""}, **kwargs)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[0].startswith("error:"), done.stderr
    return done.stderr


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_row(run_id: str) -> dict:
    return {"run_id": run_id, "kind": "test", "started_at": datetime.now(UTC), "status": "running", "config": "{}",
            "config_hash": "h", "code_version": "test"}


def execution_rows(prefix: str, n: int) -> list[dict]:
    return [{"execution_id": f"{prefix}-{i}", "kind": "returned", "value": os.urandom(16).hex(), "run_id": prefix,
             "created_at": datetime.now(UTC)} for i in range(n)]


def rows_of(path: Path, sql: str) -> list[tuple]:
    return Warehouse(path).query(sql)[1]


@pytest.fixture(scope="module")
def pairs_db(tmp_path_factory) -> Path:
    """A warehouse with verified pairs, stored by `sinq verify --db` in the real sandbox."""
    folder = tmp_path_factory.mktemp("pairs")
    source = folder / "pairs.jsonl"
    source.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    db = folder / "w.duckdb"
    done = sinq("verify", str(source), "--json", "--db", str(db))
    if done.returncode == 3:
        missing("the sandbox", done.stderr.strip()[:200], "SINQ_REQUIRE_SANDBOX")
    assert done.returncode == 0, done.stderr
    assert rows_of(db, "SELECT count(*) FROM verified_pairs") == [(2,)]
    return db


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        missing(what, "needs root here (mount a tmpfs, switch user)", "SINQ_REQUIRE_ROOT")


@contextmanager
def tiny_disk(where: Path, size: str = "3m") -> Iterator[Path]:
    """A real filesystem that fills up: a tmpfs of ``size``."""
    need_root("a full disk")
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        missing("a tmpfs", f"cannot mount one: {done.stderr.strip()}", "SINQ_REQUIRE_ROOT")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def file_size_limit(limit: int):
    """A real write failure without root: the kernel refuses to grow any file past ``limit`` bytes (EFBIG)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``."""
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


# ---- finding 2: export clobbers and follows links
def test_export_into_a_project_folder_is_refused_and_its_readme_untouched(tmp_path: Path, pairs_db: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# my project\n\nhand-written, not a dataset card\n")
    (project / "main.py").write_text("print('hi')\n")
    before = tree(project)
    for args in ((), ("--force",)):
        done = sinq("export", str(project), "--db", str(pairs_db), *args)
        assert "not a sinq export" in one_line_error(done) and done.returncode == 4
        assert tree(project) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # no temporary folder left behind

    done = sinq("export", str(project / "main.py"), "--db", str(pairs_db))
    assert "is a file" in one_line_error(done)
    assert tree(project) == before


def test_export_replaces_only_its_own_export_and_never_writes_through_a_link(tmp_path: Path, pairs_db: Path
                                                                            ) -> None:
    out = tmp_path / "out"
    assert sinq("export", str(out), "--db", str(pairs_db)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [".sinq-export.json", "README.md", "verified_pairs.parquet"]
    previous = tree(out)
    done = sinq("export", str(out), "--db", str(pairs_db))
    assert "--force" in one_line_error(done)
    assert tree(out) == previous

    victims = {name: tmp_path / f"victim-{name}" for name in ("verified_pairs.parquet", "README.md")}
    for name, victim in victims.items():
        victim.write_text(f"precious {name}\n")
        (out / name).unlink()
        (out / name).symlink_to(victim)
    done = sinq("export", str(out), "--db", str(pairs_db), "--force")
    assert done.returncode == 0, done.stderr
    for name, victim in victims.items():
        assert victim.read_text() == f"precious {name}\n"
        assert not (out / name).is_symlink() and (out / name).is_file()
    import pyarrow.parquet as pq

    assert pq.read_table(out / "verified_pairs.parquet").num_rows == 2
    assert "pairs: 2" in (out / "README.md").read_text()

    (out / ".sinq-export.json").unlink()  # an export from before manifests: recognised by its own card
    done = sinq("export", str(out), "--db", str(pairs_db), "--force", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [".sinq-export.json", "README.md", "verified_pairs.jsonl"]

    (tmp_path / "link").symlink_to(out)
    done = sinq("export", str(tmp_path / "link"), "--db", str(pairs_db), "--force")
    assert "symbolic link" in one_line_error(done)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_export_on_a_full_disk_keeps_the_previous_export_and_its_card(tmp_path: Path, pairs_db: Path) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        out = disk / "exports" / "latest"
        assert sinq("export", str(out), "--db", str(pairs_db)).returncode == 0
        previous = tree(out)
        fill(disk)
        for fmt in ("parquet", "jsonl"):
            done = sinq("export", str(out), "--db", str(pairs_db), "--force", "--format", fmt)
            assert "No space left on device" in one_line_error(done) and done.returncode == 4
            assert tree(out) == previous
            assert sorted(p.name for p in out.parent.iterdir()) == ["latest"]


def test_an_export_that_cannot_be_written_keeps_the_previous_one(tmp_path: Path, pairs_db: Path) -> None:
    out = tmp_path / "out"
    assert sinq("export", str(out), "--db", str(pairs_db)).returncode == 0
    previous = tree(out)
    done = sinq("export", str(out), "--db", str(pairs_db), "--force", "--format", "jsonl",
                preexec_fn=file_size_limit(1024))  # the card is larger
    assert "File too large" in one_line_error(done) and done.returncode == 4
    assert tree(out) == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_export_into_a_read_only_folder_is_one_line(tmp_path: Path, pairs_db: Path) -> None:
    need_root("a read-only mount")
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]).returncode != 0:
        missing("a read-only tmpfs", "mount refused", "SINQ_REQUIRE_ROOT")
    try:
        done = sinq("export", str(folder / "out"), "--db", str(pairs_db))
        assert "Read-only file system" in one_line_error(done)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


# ---- finding 3: a truncated database is written into
def test_a_truncated_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse = Warehouse(path)
    warehouse.store({"runs": [run_row("first")]})
    for b in range(6):
        warehouse.store({"executions": execution_rows(f"b{b}", 20_000)})
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)
    before = path.read_bytes()

    with pytest.raises(WarehouseError, match=r"w\.duckdb is damaged \(truncated") as caught:
        Warehouse(path).store({"runs": [run_row("second")]})
    assert "restore it from an export" in (caught.value.hint or "")
    done = sinq("db", "info", "--db", str(path))
    assert str(path) in one_line_error(done) and "move it away" in done.stderr and done.returncode == 4
    assert path.read_bytes() == before
    assert not path.with_name("w.duckdb.wal").exists()


def test_a_database_with_a_bad_checksum_is_refused_untouched(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "w.duckdb"
    Warehouse(path).store({"runs": [run_row("first")], "executions": execution_rows("b", 50_000)})
    con = duckdb.connect(str(path), read_only=True)
    [(block, size)] = con.execute("SELECT min(block_id), get_block_size(current_database()) FROM "
                                  "pragma_storage_info('executions') WHERE column_name = 'value' "
                                  "AND persistent AND block_id >= 0").fetchall()
    con.close()
    with path.open("r+b") as handle:  # a few flipped bytes inside a block of the `value` column
        handle.seek(3 * 4096 + block * size + 5000)
        handle.write(b"\xff" * 16)
    before = path.read_bytes()
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\nfrom tests.test_warehouse_safety import run_row\n"
              "from warehouse.store import Warehouse, WarehouseError\ntry:\n"
              f"    Warehouse({str(path)!r}).store({{'runs': [run_row('second')]}})\n"
              "except WarehouseError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "is damaged" in done.stdout and "checksum" in done.stdout, done.stdout + done.stderr
    assert path.read_bytes() == before


def test_a_sound_database_is_checked_once_and_then_written_normally(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({"runs": [run_row("r")]})
    for b in range(3):
        Warehouse(path).store({"executions": execution_rows(f"b{b}", 1000)})
    assert rows_of(path, "SELECT count(*) FROM executions") == [(3000,)]
    assert Warehouse(path).info()["tables"]["runs"] == 1


# ---- finding 7: the cause of a failed commit is hidden
def test_a_full_disk_shows_and_stores_the_real_cause(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        path = disk / "w.duckdb"
        warehouse = Warehouse(path)
        warehouse.store({"runs": [run_row("r")], "executions": execution_rows("kept", 10)})
        before = rows_of(path, "SELECT execution_id, value FROM executions ORDER BY 1")
        filler = fill(disk)
        with pytest.raises(WarehouseError) as caught:
            warehouse.store({"executions": execution_rows("lost", 5000)})
        assert "No space left on device" in str(caught.value)
        assert "rollback" not in str(caught.value).lower()
        filler.unlink()
        # what the nightly flow does with the error: runs.error stores the cause
        warehouse.finish_run("r", "failed", error=str(caught.value))
        assert rows_of(path, "SELECT execution_id, value FROM executions ORDER BY 1") == before
        [(status, error)] = rows_of(path, "SELECT status, error FROM runs")
        assert status == "failed" and "No space left on device" in error


def test_a_write_the_kernel_refuses_shows_its_cause(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({"runs": [run_row("r")], "executions": execution_rows("kept", 10)})
    before = rows_of(path, "SELECT execution_id, value FROM executions ORDER BY 1")
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\nfrom tests.test_warehouse_safety import "
              f"execution_rows\nfrom warehouse.store import Warehouse, WarehouseError\ntry:\n"
              f"    Warehouse({str(path)!r}).store({{'executions': execution_rows('lost', 5000)}})\n"
              "except WarehouseError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          preexec_fn=file_size_limit(65536))
    assert "File too large" in done.stdout, done.stdout + done.stderr
    assert "rollback" not in done.stdout.lower()
    assert rows_of(path, "SELECT execution_id, value FROM executions ORDER BY 1") == before


def test_an_unwritable_folder_shows_permission_denied() -> None:
    need_root("another user")
    folder = Path(tempfile.mkdtemp(prefix="sinq-shared-", dir="/tmp"))
    try:
        os.chmod(folder, 0o755)
        for p in folder.parents:
            if p.stat().st_mode & 0o001 == 0:
                missing("a folder another user reaches", f"{p} is not reachable", "SINQ_REQUIRE_ROOT")
        check_unwritable_folder(folder)
    finally:
        shutil.rmtree(folder)


def check_unwritable_folder(folder: Path) -> None:
    path = folder / "w.duckdb"
    Warehouse(path).store({"runs": [run_row("r")]})
    os.chmod(path, 0o666)  # the file is writable, its folder (root's, 0755) is not: DuckDB cannot create its WAL
    before = path.read_bytes()
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from warehouse.store import Warehouse, "
              f"WarehouseError\ntry:\n    Warehouse({str(path)!r}).finish_run('r', 'finished')\n"
              "except WarehouseError as exc:\n    print(exc)\n")
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                           script], capture_output=True, text=True, timeout=60, cwd="/")
    assert "Permission denied" in done.stdout, done.stdout + done.stderr
    assert "rollback" not in done.stdout.lower()
    assert path.read_bytes() == before
    assert rows_of(path, "SELECT status FROM runs") == [("running",)]


# ---- finding 6, the user's half: a long `sinq sql` fails a nightly write
def test_a_long_user_query_in_another_process_does_not_fail_a_write(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({"runs": [run_row("r")]})
    config = tmp_path / "sinq.toml"
    config.write_text("[warehouse]\nlock_timeout_s = 1.0\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    query = "SELECT count(*) AS n FROM range(400000000) r(i) WHERE md5(i::VARCHAR) < '1'"  # about a minute
    reader = subprocess.Popen([sys.executable, "-m", "sinq.cli", "sql", query, "--db", str(path), "--config",
                               str(config), "--format", "json"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "SINQ_CONFIG": "", "TMPDIR": str(scratch)})
    try:
        deadline = time.monotonic() + 30
        while not list(scratch.glob("sinq-sql-*/snapshot.duckdb")) and time.monotonic() < deadline:
            time.sleep(0.1)  # (today's code takes no snapshot: the deadline lets it reach its query)
        time.sleep(1.5)
        assert reader.poll() is None, reader.communicate()
        writer = Warehouse(path, lock_timeout_s=1.0)
        for b in range(3):
            writer.store({"executions": execution_rows(f"w{b}", 100)})  # each waits at most 1 s for the lock
        writer.finish_run("r", "finished")
        assert reader.poll() is None, "the query ended before the writes: they did not overlap"
    finally:
        reader.kill()
        reader.communicate()
    assert rows_of(path, "SELECT count(*) FROM executions") == [(300,)]
    assert rows_of(path, "SELECT status FROM runs") == [("finished",)]


# ---- finding 10: `sinq sql` reads the host, can fetch code, holds every row in memory
def test_sql_reads_only_the_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({"runs": [run_row("r")]})
    before = path.read_bytes()
    secret = tmp_path / "secret.txt"
    secret.write_text("the host's secret\n")
    extensions = Path.home() / ".duckdb" / "extensions"
    installed = sorted(str(p) for p in extensions.rglob("*")) if extensions.exists() else []
    for query in (f"SELECT * FROM read_text('{secret}')", "SELECT * FROM read_text('/etc/shadow')",
                  "SELECT * FROM glob('/root/*')", f"SELECT * FROM read_csv('{secret}')",
                  f"SELECT * FROM '{secret}'", "SELECT * FROM read_json('https://example.com/x.json')"):
        done = sinq("sql", query, "--db", str(path), "--format", "csv")
        one_line_error(done)
        assert "secret" not in done.stdout and "root:" not in done.stdout
    done = sinq("sql", "SELECT * FROM sqlite_scan('x.sqlite', 't')", "--db", str(path))
    assert "sqlite" in one_line_error(done)
    settings = ("SELECT current_setting('enable_external_access') AS a, "
                "current_setting('autoinstall_known_extensions') AS b, current_setting('autoload_known_extensions') c")
    done = sinq("sql", settings, "--db", str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"a": False, "b": False, "c": False}]
    done = sinq("sql", f"SELECT content FROM read_text('{secret}')", "--db", str(path), "--format", "csv",
                "--allow-files")
    assert done.returncode == 0 and "the host's secret" in done.stdout
    assert (sorted(str(p) for p in extensions.rglob("*")) if extensions.exists() else []) == installed
    assert path.read_bytes() == before


def test_sql_empty_and_comment_only_queries_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({})
    for query in ("", "   ", "-- just a comment", "/* nothing */"):
        done = sinq("sql", query, "--db", str(path))
        assert "no SQL statement" in one_line_error(done) and done.returncode == 2


def test_sql_streams_a_large_result_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({})
    query = "SELECT i, i::VARCHAR || '-row-of-the-stream' AS s FROM range(5000000) r(i)"
    # VmHWM, not ru_maxrss: the latter survives exec and would report the forking pytest's own peak (torch loaded)
    script = ("import runpy, sys\n"
              f"sys.argv = ['sinq', 'sql', {query!r}, '--db', {str(path)!r}, '--format', 'csv']\n"
              "try:\n    runpy.run_module('sinq.cli', run_name='__main__')\n"
              "finally:\n    peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
              "    print('maxrss', peak, file=sys.stderr)\n")
    out = tmp_path / "out.csv"
    with out.open("w") as handle:
        done = subprocess.run([sys.executable, "-c", script], stdout=handle, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT, timeout=600, env={**os.environ, "SINQ_CONFIG": ""})
    peak_mb = int(done.stderr.split("maxrss")[-1].split()[0]) / 1024
    with out.open() as handle:
        assert handle.readline().strip() == "i,s"
        lines = 1 + sum(1 for _ in handle)
    assert lines == 5_000_001
    assert peak_mb < 350, f"peak {peak_mb:.0f} MB: the result was held in memory"

    reader = subprocess.Popen([sys.executable, "-m", "sinq.cli", "sql", query, "--db", str(path), "--format", "csv"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "SINQ_CONFIG": ""})
    assert reader.stdout is not None and reader.stdout.readline().strip() == "i,s"
    reader.stdout.close()  # `| head -1`: the reader goes away
    assert reader.wait(timeout=120) == 0
    assert reader.stderr is not None and reader.stderr.read() == ""

    done = sinq("sql", "SELECT * FROM range(2500) r(i)", "--db", str(path), "--max-rows", "10")
    assert done.returncode == 0 and "10 rows shown, 2490 more left out" in done.stdout
    done = sinq("sql", "SELECT i FROM range(3) r(i)", "--db", str(path), "--format", "json")
    assert json.loads(done.stdout) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_the_nightly_snapshot_export_still_writes_its_own_folder(tmp_path: Path, pairs_db: Path) -> None:
    from sinq.warehouse.export import export

    exports = tmp_path / "exports"
    runs = [r[0] for r in rows_of(pairs_db, "SELECT run_id FROM runs")]
    summary = export(Warehouse(pairs_db), exports / runs[0], "parquet", runs[0])
    assert summary["pairs"] == 2
    assert json.loads((exports / runs[0] / ".sinq-export.json").read_text())["files"] == [
        "verified_pairs.parquet", "README.md"]
    shutil.rmtree(exports)
