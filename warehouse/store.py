"""The single writer and the readers.

One writer, many readers: DuckDB lets one process hold the file for writing and then refuses every other opener,
read-only ones included. So nobody holds it long. A write opens the file, stores one batch in one transaction and
closes it (milliseconds); an internal reader opens read-only, answers, closes. Both retry with jittered
exponential backoff while the other holds the lock. A user's query (``sinq sql``) may run for hours, so it never
reads the live file: it holds the lock only while it copies the file (a snapshot, reflinked where the filesystem
can), then queries the copy with file access and extension loading off; a writer never waits for it longer than
that copy. A process killed mid-write leaves the last committed state (DuckDB's WAL), and the content-hash keys
make the rerun of that batch complete it without duplicates.

Before the first write of a process to an existing file, the file is checked (its size against the blocks its own
header describes, then every column of every table read once), so a damaged database is refused untouched instead
of growing around the damage. A failed write reports its cause (disk full, permission denied), not the ROLLBACK
that follows it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from sinq.game.errors import SinqError
from sinq.warehouse.config import WarehouseConfig
from sinq.warehouse.schema import LATEST, SchemaError, current_version, migrate

READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers precede block 0
FICLONE = 0x40049409  # Linux ioctl: a copy-on-write clone of a whole file (btrfs, xfs, ...)
USER_QUERY_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
DAMAGE_HINT = ("restore it from an export (sinq export) or move it away: sinq then starts a fresh database; "
               "nothing was written to it")
WRITE_HINT = "free disk space or make the folder writable, then rerun: the batch was not stored, nothing else changed"


class WarehouseError(SinqError, RuntimeError):
    """A clear, user-facing problem with the database file (locked, corrupt, missing, newer schema)."""

    exit_code = 4


class WarehouseBusy(WarehouseError):
    """Another process held the file past ``lock_timeout_s``: infrastructure (retried), never a data problem."""


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, duckdb.IOException) and ("lock" in text.lower() or "Conflicting" in text)


_path_locks: dict[str, threading.RLock] = {}
_path_locks_guard = threading.Lock()
# integrity checks done in this process: resolved path -> the file's (inode, size, mtime, WAL) when last seen good
_checked: dict[str, tuple] = {}
_scanned: set[str] = set()


def _signature(path: Path) -> tuple:
    def stat(p: Path) -> tuple:
        try:
            st = p.stat()
        except FileNotFoundError:
            return ()
        return st.st_ino, st.st_size, st.st_mtime_ns

    return stat(path), stat(path.with_name(path.name + ".wal"))


def _cause(exc: BaseException) -> str:
    """DuckDB's own words for why a write failed, without the transaction noise around them."""
    text = str(exc).strip()
    for marker in ("Original error:", "Failed to commit:"):
        if marker in text:
            text = text.split(marker, 1)[1].strip().strip('"')
    return text.splitlines()[0] if text else type(exc).__name__


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """After a failed COMMIT DuckDB has already ended the transaction: its ROLLBACK error would hide the cause."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _described_bytes(path: Path) -> int | None:
    """The bytes a DuckDB file must hold: its three headers and every block its newer database header counts (the
    header is written after the blocks, so a sound file is never shorter; a WAL only adds blocks). None where the
    header is not one this code knows."""
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES or head[8:12] != b"DUCK":
        return None
    headers = [struct.unpack_from("<6Q", head, offset) for offset in (4096, 8192)]
    _, _, _, _, blocks, block_size = max(headers, key=lambda h: h[1])  # the newer iteration is the live one
    if block_size < 4096 or block_size & (block_size - 1) or block_size > 1 << 26 or blocks > 1 << 40:
        return None
    return HEADER_BYTES + blocks * block_size


def _truncation(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """DuckDB notices a truncated file only when it reads a missing block, often after it has written around the
    hole. A file may end before the blocks its header counts only where those are free (a checkpoint drops a free
    tail), so when it does: every block a table or the metadata uses must lie inside the file, and (no WAL to
    replay) the missing blocks must be no more than the free ones."""
    described, actual = _described_bytes(path), path.stat().st_size
    if described is None or actual >= described:
        return None
    block_size = struct.unpack_from("<6Q", path.open("rb").read(HEADER_BYTES), 4096)[5]
    present = (actual - HEADER_BYTES) // block_size
    problem = f"truncated: {actual} bytes where its header describes {described}"
    used = [r[0] for r in con.execute("SELECT block_id FROM pragma_metadata_info()").fetchall()]
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_type = 'BASE TABLE' AND table_catalog = current_database()"
                                        ).fetchall()]
    for table in tables:
        used += [r[0] for r in con.execute("SELECT max(block_id) FROM pragma_storage_info(?) "
                                           "WHERE block_id >= 0 AND block_id < 4611686018427387904", [table]
                                           ).fetchall() if r[0] is not None]
    if used and max(used) >= present:
        return f"{problem}; block {max(used)} is missing"
    missing = _unreadable_index(con, tables)
    if missing:
        return f"{problem}; {missing}"
    if not path.with_name(path.name + ".wal").exists():
        name = con.execute("SELECT current_database()").fetchall()[0][0]
        for database, _, _, total_blocks, _, free_blocks, *_ in con.execute("PRAGMA database_size").fetchall():
            if database == name and int(total_blocks) - present > int(free_blocks):
                return f"{problem}; {int(total_blocks) - present} blocks are missing, {free_blocks} were free"
    return None


def _unreadable_index(con: duckdb.DuckDBPyConnection, tables: list[str], lookups: int = 256) -> str | None:
    """Primary-key indexes live in blocks no catalog function lists; point lookups (which walk the index) of keys
    spread over each table find a hole in them."""
    for table in tables:
        keys = [r[0] for r in con.execute(
            "SELECT unnest(constraint_column_names) FROM duckdb_constraints() WHERE table_name = ? "
            "AND constraint_type = 'PRIMARY KEY' AND database_name = current_database()", [table]).fetchall()]
        if not keys:
            continue
        names = ", ".join(f'"{k}"' for k in keys)
        rows = con.execute(f'SELECT {names} FROM (SELECT {names}, row_number() OVER () AS n, count(*) OVER () AS '
                           f'total FROM "{table}") WHERE n % greatest(1, total // {lookups}) = 0').fetchall()
        match = " AND ".join(f'"{k}" = ?' for k in keys)
        for row in rows:
            try:
                con.execute(f'SELECT count(*) FROM "{table}" WHERE {match}', list(row)).fetchall()
            except duckdb.Error as exc:
                return f"the index of {table} does not read back: {_cause(exc)}"
    return None


def _damage(con: duckdb.DuckDBPyConnection, full: bool) -> str | None:
    """What is wrong with the open file, or None: (``full``) every column of every table must read back (a bad
    checksum shows only when its block is read)."""
    if not full:
        return None
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_type = 'BASE TABLE' AND table_catalog = current_database()"
                                        ).fetchall()]
    for table in tables:
        columns = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = ? AND table_catalog = current_database()",
                                             [table]).fetchall()]
        reads = ", ".join(f'sum(hash("{c}"))' for c in columns) or "0"
        try:
            con.execute(f'SELECT count(*), {reads} FROM "{table}"').fetchall()
        except duckdb.Error as exc:
            return f"table {table} does not read back: {_cause(exc)}"
    return None


def _clone(source: Path, target: Path) -> None:
    """A copy-on-write clone where the filesystem offers one (instant), else a plain copy."""
    with source.open("rb") as src, target.open("wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return
        except OSError:
            pass
        shutil.copyfileobj(src, dst, 1 << 20)


def check_location(path: Path, doing: str) -> None:
    """Refuse, before any work, a database path that cannot be written: a missing folder, a folder where the file
    should be, no permission (one line each, exit 4). ``doing`` names the work in the message ("create the
    database", "store the evaluation in"). Nothing is created."""
    hint = "choose another --db (or [warehouse] path, SINQ_DB)"
    folder = path.absolute().parent
    if not folder.is_dir():
        raise WarehouseError(f"cannot {doing} {path}: folder {folder} does not exist", hint=f"create it, or {hint}")
    if path.is_dir():
        raise WarehouseError(f"the database {path} is a folder, not a DuckDB file", hint=hint)
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        raise WarehouseError(f"cannot write the database {path}: permission denied", hint=hint)


def _process_lock(path: Path) -> threading.RLock:
    """DuckDB refuses a second connection to one file with another configuration (read-only vs read-write) in the
    same process, so the threads of one process take turns on a file; other processes are handled by retries."""
    key = str(path.resolve())
    with _path_locks_guard:
        return _path_locks.setdefault(key, threading.RLock())


class Warehouse:
    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s

    @classmethod
    def from_config(cls, config: WarehouseConfig, path: str | Path | None = None) -> Warehouse:
        """The warehouse ``[warehouse]`` names (SINQ_DB already applied by the settings), or ``path`` instead."""
        return cls(path if path is not None else config.path, config.lock_timeout_s)

    def _connect(self, read_only: bool, path: Path | None = None,
                 config: dict | None = None) -> duckdb.DuckDBPyConnection:
        retrying = Retrying(retry=retry_if_exception(_is_lock_error), reraise=True,
                            wait=wait_random_exponential(multiplier=0.02, max=0.5),
                            stop=stop_after_delay(self.lock_timeout_s))
        try:
            con = retrying(duckdb.connect, str(path or self.path), read_only=read_only, config=config or {})
            con.execute("SET enable_progress_bar = false")
            if config:
                con.execute("SET lock_configuration = true")  # a user's query cannot turn the safety off
            return con
        except duckdb.IOException as exc:
            if _is_lock_error(exc):
                raise WarehouseBusy(f"{self.path} stayed locked by another process for {self.lock_timeout_s:.0f} s "
                                     "(a writer that never lets go?): retry later or stop that process") from exc
            raise WarehouseError(f"cannot open {path or self.path}: {_cause(exc)}",
                                 hint="check the path and its permissions; a file that is not whole: " + DAMAGE_HINT
                                 ) from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"{self.path} is not a usable DuckDB database ({_cause(exc)})",
                                 hint=DAMAGE_HINT) from exc

    def check(self, full: bool = True) -> None:
        """Refuse a damaged file before anything is written to it. Cheap once done: the size check runs when the
        file changed behind this process's back, the full read once per process and file."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        key = str(self.path.resolve())
        if _checked.get(key) == _signature(self.path):
            return
        con = self._connect(read_only=True)
        try:
            problem = _truncation(con, self.path) or _damage(con, full=full and key not in _scanned)
            signature = _signature(self.path)
        except duckdb.Error as exc:
            problem = _cause(exc)
        finally:
            con.close()
        if problem:
            raise WarehouseError(f"{self.path} is damaged ({problem})", hint=DAMAGE_HINT)
        _scanned.add(key)
        _checked[key] = signature

    def _write_failure(self, exc: BaseException) -> WarehouseError:
        return WarehouseError(f"could not write {self.path}: {_cause(exc)}", hint=WRITE_HINT)

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short write window: open, migrate, one transaction, close."""
        with _process_lock(self.path):
            yield from self._write_window()

    def _write_window(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.check()
        created = not self.path.exists()
        con = self._connect(read_only=False)
        committed = False
        try:
            try:
                migrate(con)
            except SchemaError as exc:
                raise WarehouseError(str(exc)) from exc
            except duckdb.Error as exc:
                raise self._write_failure(exc) from exc
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except duckdb.IOException as exc:
                _rollback_quietly(con)
                raise self._write_failure(exc) from exc
            except BaseException:
                _rollback_quietly(con)
                raise
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:
                _rollback_quietly(con)
                raise self._write_failure(exc) from exc
            committed = True
        finally:
            try:
                con.close()
            except duckdb.Error as exc:
                if committed:
                    raise self._write_failure(exc) from exc
        key = str(self.path.resolve())
        if created or key in _checked:
            # our own committed write: the file is as good as it was (no need to re-read it)
            _scanned.add(key)
            _checked[key] = _signature(self.path)

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.path.exists():
            raise WarehouseError(f"no warehouse at {self.path} (set --db or SINQ_DB)")
        with _process_lock(self.path):
            yield from self._read_window()

    def _read_window(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._connect(read_only=True)
        try:
            self._refuse_newer(con)
            yield con
        finally:
            con.close()

    @staticmethod
    def _refuse_newer(con: duckdb.DuckDBPyConnection) -> None:
        version = current_version(con)
        if version > LATEST:
            raise WarehouseError(f"database schema version {version} is newer than this sinq understands "
                                 f"({LATEST}); upgrade sinq")

    # ---- writes
    def store(self, batch: dict[str, list[dict]],
              prepare: Callable[[duckdb.DuckDBPyConnection, dict[str, list[dict]]], None] | None = None
              ) -> dict[str, int]:
        """Insert rows per table in one transaction; rows whose key exists are skipped. Returns rows inserted.

        ``prepare(con, batch)`` runs inside that transaction before the inserts and may fill in the batch's rows
        from what is stored (duplicate marks): no other writer can store in between, so two writers never both miss
        each other's rows."""
        inserted: dict[str, int] = {}
        with self.writing() as con:
            if prepare is not None:
                prepare(con, batch)
            for table, rows in batch.items():
                if not rows:
                    inserted[table] = 0
                    continue
                inserted[table] = self._insert(con, table, rows)
        return inserted

    def finish_run(self, run_id: str, status: str, timings: dict | None = None, error: str | None = None) -> None:
        """Close a run's row (the one update the warehouse makes: everything else is insert-only)."""
        with self.writing() as con:
            con.execute("UPDATE runs SET status = ?, finished_at = ?, timings = ?, error = ? WHERE run_id = ?",
                        [status, datetime.now(UTC), json.dumps(timings or {}), error, run_id])

    @staticmethod
    def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict] | pa.Table) -> int:
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table]).fetchall()]
        if not columns:
            raise WarehouseError(f"unknown table {table!r}")
        keys = [r[0] for r in con.execute(
            "SELECT unnest(constraint_column_names) FROM duckdb_constraints() "
            "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'", [table]).fetchall()]
        if not isinstance(rows, pa.Table):
            unique: dict[tuple, dict] = {}
            for row in rows:
                unique.setdefault(tuple(row.get(k) for k in keys), row)
            rows = list(unique.values())
        data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
        unknown = set(data.column_names) - set(columns)
        if unknown:
            raise WarehouseError(f"{table}: unknown columns {sorted(unknown)}")
        present = [c for c in columns if c in data.column_names]
        con.register("_incoming", data)
        try:
            names = ", ".join(f'"{c}"' for c in present)
            match = " AND ".join(f't."{k}" = i."{k}"' for k in keys) or "false"
            # an anti-join rather than ON CONFLICT DO NOTHING: same result for the single writer, ~35 % faster
            result = con.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM _incoming i '
                                 f'WHERE NOT EXISTS (SELECT 1 FROM "{table}" t WHERE {match})').fetchall()
        finally:
            con.unregister("_incoming")
        return int(result[0][0]) if result else 0

    # ---- reads
    @contextmanager
    def snapshot(self, allow_files: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A user's read connection: on a copy of the file taken under the lock, so a writer waits for the copy,
        never for the query (which may run, or stream into a slow pipe, for hours). Extension install and autoload
        are off; so is every file and network access unless ``allow_files``."""
        if not self.path.exists():
            raise WarehouseError(f"no warehouse at {self.path} (set --db or SINQ_DB)")
        folder = Path(tempfile.mkdtemp(prefix="sinq-sql-"))
        try:
            copy = folder / "snapshot.duckdb"
            with _process_lock(self.path):
                con = self._connect(read_only=True)
                try:
                    self._refuse_newer(con)
                    wal = self.path.with_name(self.path.name + ".wal")
                    try:
                        _clone(self.path, copy)
                        if wal.exists():
                            _clone(wal, copy.with_name(copy.name + ".wal"))
                    except OSError as exc:
                        raise WarehouseError(f"cannot copy {self.path} into {folder} for the query: "
                                             f"{exc.strerror or exc}",
                                             hint="set TMPDIR to a folder with room for a copy of the database"
                                             ) from exc
                finally:
                    con.close()
            config = {**USER_QUERY_CONFIG, "enable_external_access": allow_files}
            con = self._connect(read_only=True, path=copy, config=config)
            try:
                yield con
            finally:
                con.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def stream(self, sql: str, params: list | None = None, allow_files: bool = False, batch: int = 2048
               ) -> Iterator[tuple[list[str], Iterator[list[tuple]]]]:
        """A user's read-only SQL: (columns, batches of rows as DuckDB produces them): never the whole result in
        memory. Anything but SELECT/EXPLAIN is refused before it reaches the database."""
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"SQL does not parse: {_cause(exc)}", exit_code=2) from exc
        if not statements:
            raise WarehouseError("no SQL statement given (only blanks or comments)",
                                 hint='try: sinq sql "SELECT * FROM verified_pairs LIMIT 5"', exit_code=2)
        kinds = {s.type.name for s in statements}
        if not kinds <= READ_ONLY_STATEMENTS:
            raise WarehouseError(f"sinq sql is read-only: {', '.join(sorted(kinds - READ_ONLY_STATEMENTS))} "
                                 "statements are refused", hint="only SELECT and EXPLAIN run here", exit_code=2)
        from sinq.warehouse.user_sql import check_read_only  # it imports this module

        check_read_only(sql)  # statement by statement: an EXPLAIN ANALYZE of a COPY or INSTALL is refused too
        with self.snapshot(allow_files=allow_files) as con:
            try:
                cursor = con.execute(sql, params or [])
            except duckdb.PermissionException as exc:
                raise WarehouseError(f"query refused: {_cause(exc)}",
                                     hint="sinq sql reads the warehouse only; --allow-files lets it read files",
                                     exit_code=2) from exc
            except duckdb.Error as exc:
                raise WarehouseError(f"query failed: {_cause(exc)}") from exc
            columns = [d[0] for d in cursor.description or []]

            def batches() -> Iterator[list[tuple]]:
                while True:
                    try:
                        rows = cursor.fetchmany(batch)
                    except duckdb.Error as exc:
                        raise WarehouseError(f"query failed: {_cause(exc)}") from exc
                    if not rows:
                        return
                    yield rows

            yield columns, batches()

    def query(self, sql: str, params: list | None = None, allow_files: bool = False
              ) -> tuple[list[str], list[tuple]]:
        """``stream`` collected: for small answers (tests, scripts)."""
        with self.stream(sql, params, allow_files=allow_files) as (columns, batches):
            return columns, [row for rows in batches for row in rows]

    def info(self) -> dict:
        """Path, schema version, row counts, and whether the file passed the integrity check."""
        self.check()
        with self.reading() as con:
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "ORDER BY table_name").fetchall()]
            counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}
            views = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW' ORDER BY 1").fetchall()]
            return {"path": str(self.path), "schema_version": current_version(con), "tables": counts, "views": views,
                    "bytes": self.path.stat().st_size, "integrity": "ok"}
