"""A user's SQL (``sinq sql``), checked before it reaches the snapshot: reads only, whatever ``--allow-files`` says.

DuckDB's own parser classifies every statement of the input (``duckdb.extract_statements``), one by one: a SELECT
(with WITH, DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM-first) runs; an EXPLAIN runs only when what it explains is one
SELECT, because ``EXPLAIN ANALYZE`` executes its statement (``EXPLAIN ANALYZE COPY ... TO 'file'`` writes the file,
``EXPLAIN ANALYZE INSTALL httpfs`` downloads); everything else (COPY, INSTALL, LOAD, ATTACH, SET, PRAGMA, CALL, DDL,
DML, ...) is refused. The snapshot connection adds DuckDB's settings on top (``Warehouse.snapshot``: extension
install and autoload off, external access only with ``--allow-files``, the configuration locked). A query that is
wrong (a table or column that does not exist, a type error, a parse error) is a bad argument, exit 2; only what is
wrong with the database itself stays a warehouse error (exit 4)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from sinq.warehouse.store import Warehouse, WarehouseError

READ_ONLY = "SELECT"
EXPLAIN_WORDS = {"ANALYZE", "ANALYSE", "VERBOSE"}
QUERY_FAULTS: tuple[type[BaseException], ...] = (duckdb.ProgrammingError, duckdb.DataError,
                                                 duckdb.NotSupportedError, duckdb.PermissionException)
"""DuckDB errors that are the query's fault (parser, binder, catalog, conversion, range, not implemented,
permission): exit 2. IO, internal, memory and serialisation errors stay the warehouse's (exit 4)."""
MISSING_FILE = ("No files found", "No such file or directory", "Cannot open file")
"""An IO error naming a file the query asked for (only possible with --allow-files): the query's fault."""
HINT = 'only SELECT (WITH ... SELECT, DESCRIBE, SHOW) and EXPLAIN [ANALYZE] SELECT run here'


def _refused(what: str) -> WarehouseError:
    return WarehouseError(f"sinq sql is read-only: {what} is refused", hint=HINT, exit_code=2)


def _parsed(sql: str) -> list:
    try:
        return duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise WarehouseError(f"SQL does not parse: {' '.join(str(exc).split())}", exit_code=2) from exc


def _first_word(text: str) -> str:
    """The statement's first keyword as written (INSTALL, not DuckDB's type name LOAD), for the message."""
    words = [text[at:].split(None, 1)[0] for at, kind in duckdb.tokenize(text) if kind != duckdb.token_type.comment]
    return words[0].upper().rstrip(";") if words else "an empty statement"


def explained(text: str) -> str | None:
    """What an EXPLAIN statement explains: its text after ``EXPLAIN``, ``ANALYZE`` and an option list (``(FORMAT
    JSON, ANALYZE)``), found by DuckDB's tokenizer so that comments between the words do not hide anything. None
    when the text does not start that way."""
    every = duckdb.tokenize(text)
    ends = [at for at, _ in every[1:]] + [len(text)]
    tokens = [(at, end, kind) for (at, kind), end in zip(every, ends, strict=True)
              if kind != duckdb.token_type.comment]

    def word(i: int) -> str:
        return text[tokens[i][0]:tokens[i][1]].strip().upper()

    if not tokens or word(0) != "EXPLAIN":
        return None
    i = 1
    while i < len(tokens):
        current = word(i)
        if current in EXPLAIN_WORDS:
            i += 1
        elif current.startswith("(") and tokens[i][2] == duckdb.token_type.operator:
            depth = 0
            while i < len(tokens):  # skip the option list to its closing parenthesis
                symbol = word(i) if tokens[i][2] == duckdb.token_type.operator else ""
                depth += symbol.count("(") - symbol.count(")")
                i += 1
                if depth <= 0:
                    break
        else:
            break
    return text[tokens[i][0]:] if i < len(tokens) else ""


def check_read_only(sql: str) -> list[str]:
    """Each statement's kind, in order, after refusing anything that is not a read: no statement at all, a
    statement other than SELECT, an EXPLAIN of anything but a single SELECT (exit 2 each)."""
    statements = _parsed(sql)
    if not statements:
        raise WarehouseError("no SQL statement given (only blanks or comments)",
                             hint='try: sinq sql "SELECT * FROM verified_pairs LIMIT 5"', exit_code=2)
    kinds = []
    for number, statement in enumerate(statements, start=1):
        kind = statement.type.name
        where = f" (statement {number})" if len(statements) > 1 else ""
        if kind == "EXPLAIN":
            inner_text = explained(statement.query)
            inner = _parsed(inner_text) if inner_text and inner_text.strip() else []
            if [s.type.name for s in inner] != [READ_ONLY]:
                raise _refused(f"EXPLAIN of {_first_word(inner_text or '')}{where}")
        elif kind != READ_ONLY:
            raise _refused(f"{_first_word(statement.query)}{where}")
        kinds.append(kind)
    return kinds


def _query_error(exc: WarehouseError, allow_files: bool) -> WarehouseError:
    """The warehouse's error for a failed query, as a bad argument (exit 2) when DuckDB blamed the query."""
    cause = exc.__cause__
    missing = (allow_files and isinstance(cause, duckdb.IOException)
               and any(text in str(cause) for text in MISSING_FILE))
    if (isinstance(cause, QUERY_FAULTS) or missing) and exc.exit_code != 2:
        hint = "check the file's path" if missing else 'check the query: `sinq sql "SHOW TABLES"` lists the tables'
        return WarehouseError(exc.message, hint=exc.hint or hint, exit_code=2)
    return exc


@contextmanager
def user_query(warehouse: Warehouse, sql: str, allow_files: bool = False
               ) -> Iterator[tuple[list[str], Iterator[list[tuple]]]]:
    """``Warehouse.stream`` for a user's SQL: every statement checked first (``check_read_only``), a query's own
    mistakes reported as exit 2, whether DuckDB finds them when the query starts or while rows stream."""
    check_read_only(sql)
    try:
        with warehouse.stream(sql, allow_files=allow_files) as (columns, batches):
            yield columns, batches
    except WarehouseError as exc:
        mapped = _query_error(exc, allow_files)
        if mapped is exc:
            raise
        raise mapped from exc.__cause__
