"""Reading the old service's ``port_configurations`` table: read-only, bounded, and literal about flags.

The platform's database-backed allocator created its table with ``is_available BOOLEAN
DEFAULT TRUE`` and inserted rows without naming that column, so every row it holds has
the flag set, in use or not. The column therefore says nothing by itself: every row is
kept unless the caller says which value of which column means "released"
(``ReleasedWhen``, ``--released-when is_available=0``). A flag is read as what it says
(``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off``) or the import is refused
naming the row, never guessed: dropping a live row hands its ports out twice.

A database is someone else's file and may be hostile: ``port_configurations`` can be a
view that never ends or yields millions of rows. The read is bounded by a row limit and
a deadline (``ReadLimits``), SQLite keeps its temporary data in memory under a heap
limit rather than in a temp file that could grow without bound, and the connection is
read-only, answers queries only and does not trust functions named in the schema.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from portalloc.errors import ImportSourceError

#: The table the platform's database-backed allocator kept its rows in.
SQLITE_TABLE = "port_configurations"
_COLUMNS = ("id", "model", "app_num", "backend_port", "frontend_port")
#: SQLite's whole heap while an import reads (temporary tables and sorts included).
HEAP_LIMIT_BYTES = 256 * 1024 * 1024
_FLAGS = {
    **dict.fromkeys(("1", "true", "t", "yes", "y", "on"), True),
    **dict.fromkeys(("0", "false", "f", "no", "n", "off"), False),
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ReadLimits(NamedTuple):
    """How much of a source an import reads before refusing it: rows, and seconds of reading."""

    max_rows: int = 100_000
    seconds: float = 20.0


class ReleasedWhen(NamedTuple):
    """Rows whose ``column`` reads as ``value`` were released in the old database: they hold nothing."""

    column: str
    value: bool

    @classmethod
    def parse(cls, text: str) -> ReleasedWhen:
        """``is_available=0`` → ``ReleasedWhen("is_available", False)``; ``ValueError`` saying what is wrong."""
        column, equals, raw = text.partition("=")
        if not equals or not _IDENTIFIER.fullmatch(column.strip()):
            raise ValueError(f"{text!r} is not COLUMN=VALUE (for example is_available=0)")
        value = read_flag(raw)
        if value is None:
            raise ValueError(f"{raw.strip()!r} is not a yes/no value (1/0, true/false, yes/no, on/off)")
        return cls(column.strip(), value)

    def describe(self) -> str:
        """``is_available=0``."""
        return f"{self.column}={int(self.value)}"


def read_flag(value: Any) -> bool | None:
    """A yes/no value as SQLite may hold it (``1``, ``0``, ``'false'``, ``'Yes'``…), or ``None`` if it says neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _FLAGS.get(value.strip().lower())
    return None


def read_table(
    path: Path, limits: ReadLimits, released_when: ReleasedWhen | None
) -> list[tuple[str, Any, Any, Any, Any, str | None]]:
    """The table's rows as ``(where, model, app_num, backend, frontend, released)``, in the table's own order.

    ``released`` is why the row holds nothing (``released_when`` matched), else ``None``.
    Raises ``ImportSourceError`` for a database without a readable table, a flag that
    is neither yes nor no, and a read past ``limits`` (nothing is imported then).
    """
    with _bounded_connection(path, limits) as connection:
        columns = _table_columns(connection, path)
        wanted = list(_COLUMNS)
        if released_when is not None:
            if released_when.column not in columns:
                raise ImportSourceError(
                    f"{path}: {SQLITE_TABLE} has no column {released_when.column} "
                    f"(it has {', '.join(sorted(columns))}); check --released-when"
                )
            wanted.append(released_when.column)
        raw_rows = _fetch_bounded(connection, path, wanted, limits)
    return [_row(path, raw, released_when) for raw in raw_rows]


def _row(
    path: Path, raw: tuple[Any, ...], released_when: ReleasedWhen | None
) -> tuple[str, Any, Any, Any, Any, str | None]:
    row_id, model, app_num, backend, frontend, *flag = raw
    where = f"id {row_id}"
    released = None
    if released_when is not None:
        value = read_flag(flag[0])
        if value is None:
            raise ImportSourceError(
                f"{path}: {where}: {released_when.column} is {flag[0]!r}, not a yes/no value "
                "(1/0, true/false, yes/no, on/off); nothing imported"
            )
        if value == released_when.value:
            released = f"{released_when.column} is {flag[0]!r}: the old database had released this pair"
    return where, model, app_num, backend, frontend, released


@contextmanager
def _bounded_connection(path: Path, limits: ReadLimits) -> Iterator[sqlite3.Connection]:
    # mode=ro: the old database is evidence; nothing portalloc does may change it. Without a journal
    # beside it the file is the whole database, and immutable=1 keeps SQLite from creating the -wal
    # and -shm files a WAL database otherwise gets on opening; with one, SQLite must read it (a -wal
    # may hold rows the file does not have yet), so the database is opened plainly read-only.
    real = path.resolve()
    journal = any(Path(f"{real}{suffix}").exists() for suffix in ("-wal", "-journal"))
    uri = f"file:{quote(str(real))}?mode=ro" + ("" if journal else "&immutable=1")
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        raise ImportSourceError(f"cannot open SQLite database {path}: {error}") from None
    deadline = time.monotonic() + limits.seconds
    # SQLite calls this every few thousand virtual-machine steps; a true answer interrupts the query.
    connection.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try:
        for pragma in ("query_only = ON", "trusted_schema = OFF", "temp_store = MEMORY"):
            connection.execute(f"PRAGMA {pragma}")
        # The heap limit is the process's; put back what the caller had.
        (previous,) = connection.execute("PRAGMA hard_heap_limit").fetchone()
        connection.execute(f"PRAGMA hard_heap_limit = {HEAP_LIMIT_BYTES}")
        try:
            yield connection
        finally:
            connection.set_progress_handler(None, 0)
            connection.execute(f"PRAGMA hard_heap_limit = {int(previous)}")
    except sqlite3.Error as error:
        raise _read_error(path, error, limits) from None
    except MemoryError:
        raise ImportSourceError(
            f"{path}: reading {SQLITE_TABLE} needs more than {HEAP_LIMIT_BYTES // 2**20} MiB; nothing imported"
        ) from None
    finally:
        connection.close()


def _read_error(path: Path, error: sqlite3.Error, limits: ReadLimits) -> ImportSourceError:
    if "interrupted" in str(error):
        return _too_slow(path, limits)
    return ImportSourceError(f"{path} has no readable {SQLITE_TABLE} table: {error}")


def _too_slow(path: Path, limits: ReadLimits) -> ImportSourceError:
    return ImportSourceError(
        f"{path}: reading {SQLITE_TABLE} went past the time limit of {limits.seconds:g} s "
        "(a view that never ends?); nothing imported (--time-limit raises the limit)"
    )


def _table_columns(connection: sqlite3.Connection, path: Path) -> set[str]:
    columns = {row[1] for row in connection.execute(f"PRAGMA table_info({SQLITE_TABLE})")}
    missing = [name for name in _COLUMNS if name not in columns]
    if missing:
        found = "no such table" if not columns else f"no column {', '.join(missing)}"
        raise ImportSourceError(
            f"{path} has no readable {SQLITE_TABLE} table with columns {', '.join(_COLUMNS)} ({found})"
        )
    return columns


def _fetch_bounded(
    connection: sqlite3.Connection, path: Path, columns: list[str], limits: ReadLimits
) -> list[tuple[Any, ...]]:
    # No ORDER BY: a table is read in id order anyway (id is its rowid), and sorting a view would
    # make SQLite compute all of it before the first row. LIMIT one past the limit tells "too many".
    names = ", ".join(f'"{name}"' for name in columns)
    cursor = connection.execute(f"SELECT {names} FROM {SQLITE_TABLE} LIMIT {limits.max_rows + 1}")
    rows: list[tuple[Any, ...]] = []
    while chunk := cursor.fetchmany(1000):
        rows.extend(chunk)
        if len(rows) > limits.max_rows:
            raise ImportSourceError(
                f"{path}: {SQLITE_TABLE} has more than {limits.max_rows:,} rows; nothing imported "
                "(--max-rows raises the limit)"
            )
    return rows
