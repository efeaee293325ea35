"""The single writer and the readers.

One writer, many readers: DuckDB lets one process hold the file for writing and then refuses every other opener,
read-only ones included. So nobody holds it long. A write opens the file, stores one batch in one transaction and
closes it (milliseconds); a reader (``sinq sql``) opens read-only, answers, closes. Both retry with jittered
exponential backoff while the other holds the lock, so user SQL works during a nightly run: it waits at most one
batch write. A process killed mid-write leaves the last committed state (DuckDB's WAL), and the content-hash keys
make the rerun of that batch complete it without duplicates.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from game.errors import SinqError
from warehouse.schema import LATEST, SchemaError, current_version, migrate

READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


class WarehouseError(SinqError, RuntimeError):
    """A clear, user-facing problem with the database file (locked, corrupt, missing, newer schema)."""

    exit_code = 4


class WarehouseBusy(WarehouseError):
    """Another process held the file past ``lock_timeout_s``: infrastructure (retried), never a data problem."""


def default_db_path() -> Path:
    return Path(os.environ.get("SINQ_DB", "sinq.duckdb"))


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, duckdb.IOException) and ("lock" in text.lower() or "Conflicting" in text)


_path_locks: dict[str, threading.RLock] = {}
_path_locks_guard = threading.Lock()


def _process_lock(path: Path) -> threading.RLock:
    """DuckDB refuses a second connection to one file with another configuration (read-only vs read-write) in the
    same process, so the threads of one process take turns on a file; other processes are handled by retries."""
    key = str(path.resolve())
    with _path_locks_guard:
        return _path_locks.setdefault(key, threading.RLock())


class Warehouse:
    def __init__(self, path: str | Path | None = None, lock_timeout_s: float = 120.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.lock_timeout_s = lock_timeout_s

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        retrying = Retrying(retry=retry_if_exception(_is_lock_error), reraise=True,
                            wait=wait_random_exponential(multiplier=0.02, max=0.5),
                            stop=stop_after_delay(self.lock_timeout_s))
        try:
            con = retrying(duckdb.connect, str(self.path), read_only=read_only)
            con.execute("SET enable_progress_bar = false")
            return con
        except duckdb.IOException as exc:
            if _is_lock_error(exc):
                raise WarehouseBusy(f"{self.path} stayed locked by another process for {self.lock_timeout_s:.0f} s "
                                     "(a writer that never lets go?): retry later or stop that process") from exc
            raise WarehouseError(f"cannot open {self.path}: {exc}") from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"{self.path} is not a usable DuckDB database ({exc}); restore it from an "
                                 "export or move it away") from exc

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short write window: open, migrate, one transaction, close."""
        with _process_lock(self.path):
            yield from self._write_window()

    def _write_window(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._connect(read_only=False)
        try:
            try:
                migrate(con)
            except SchemaError as exc:
                raise WarehouseError(str(exc)) from exc
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.path.exists():
            raise WarehouseError(f"no warehouse at {self.path} (set --db or SINQ_DB)")
        with _process_lock(self.path):
            yield from self._read_window()

    def _read_window(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._connect(read_only=True)
        try:
            version = current_version(con)
            if version > LATEST:
                raise WarehouseError(f"database schema version {version} is newer than this sinq understands "
                                     f"({LATEST}); upgrade sinq")
            yield con
        finally:
            con.close()

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
    def query(self, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
        """Run read-only SQL; anything but SELECT/EXPLAIN is refused before it reaches the database."""
        with self.reading() as con:
            try:
                statements = con.extract_statements(sql)
            except duckdb.Error as exc:
                raise WarehouseError(f"SQL does not parse: {exc}") from exc
            kinds = {s.type.name for s in statements}
            if not statements or not kinds <= READ_ONLY_STATEMENTS:
                raise WarehouseError(f"sinq sql is read-only: {', '.join(sorted(kinds - READ_ONLY_STATEMENTS)) or 'no'}"
                                     " statements are refused")
            try:
                cursor = con.execute(sql, params or [])
            except duckdb.Error as exc:
                raise WarehouseError(f"query failed: {exc}") from exc
            columns = [d[0] for d in cursor.description or []]
            return columns, cursor.fetchall()

    def info(self) -> dict:
        with self.reading() as con:
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "ORDER BY table_name").fetchall()]
            counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}
            views = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW' ORDER BY 1").fetchall()]
            return {"path": str(self.path), "schema_version": current_version(con), "tables": counts, "views": views,
                    "bytes": self.path.stat().st_size}
