"""The host lease store's file: its journal, what a commit promises after a crash, and its tables.

``prepare`` readies a new connection (``machine.leases.open_store`` opens it): the busy
timeout, the journal and the durability setting, and on first use the schema; a store
that a newer, incompatible portalloc made is refused.

WAL is used where the file system allows it (it does not on some network file systems;
then the rollback journal), with ``synchronous=NORMAL``. What that promises, from
SQLite's own pages on WAL and ``synchronous``: a commit is atomic and the file stays
consistent whatever happens; a commit survives the process being killed at any instant
(it is in the WAL file, which the OS has, before ``COMMIT`` returns); only a power loss
or an OS crash may undo the last commits, since WAL syncs at checkpoints, not at each
commit (``FULL`` would add an fsync to every commit). That is what the write path needs
(DESIGN.md, "host leases"): a lease is committed before the ledger's rename, so a
process killed at any instant leaves each port it handed out leased or in the ledger;
and a power loss that undoes a lease cannot undo a port that was handed out, since the
ledger's own fsyncs (temp file, then directory) complete before any pair is returned,
and the first write to that ledger of each process (which compares every row with the
store) or ``portalloc host sync`` leases its rows again.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress

from portalloc.machine.worktreeleases import WORKTREE_SCHEMA, WORKTREE_TABLES

#: The layout this code writes. A store whose ``readable_by`` is higher was made by a newer
#: portalloc that changed it incompatibly, and is refused; additions keep ``readable_by``.
SCHEMA_VERSION = WORKTREE_SCHEMA
#: How long a writer waits for another process's store transaction.
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ledgers (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,
    repository TEXT,
    relative TEXT
);
CREATE TABLE IF NOT EXISTS checkouts (
    ledger_id INTEGER NOT NULL REFERENCES ledgers(id),
    path TEXT NOT NULL,
    top TEXT,
    seen_at REAL NOT NULL,
    PRIMARY KEY (ledger_id, path)
);
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY,
    ledger_id INTEGER NOT NULL REFERENCES ledgers(id),
    model TEXT NOT NULL,
    app_num INTEGER NOT NULL,
    backend INTEGER NOT NULL,
    frontend INTEGER NOT NULL,
    live INTEGER NOT NULL,
    leased_at REAL NOT NULL,
    ended_at REAL,
    ended_why TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS leases_live_key ON leases (ledger_id, model, app_num) WHERE live;
CREATE INDEX IF NOT EXISTS leases_live_backend ON leases (backend, frontend, ledger_id, model, app_num) WHERE live;
CREATE INDEX IF NOT EXISTS leases_live_frontend ON leases (frontend, backend, ledger_id, model, app_num) WHERE live;
"""


def prepare(connection: sqlite3.Connection) -> None:
    """Set the journal and, on first use, the schema; refuse a store a newer, incompatible portalloc made."""
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA synchronous = NORMAL")
    readable_by = _readable_by(connection)
    if readable_by is not None and readable_by > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"it was made by a newer portalloc (schema {readable_by}, this one knows {SCHEMA_VERSION}); "
            "upgrade portalloc"
        )
    if readable_by is None and connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        # Persistent in the file, so set once. A file system without shared memory (some
        # network homes) refuses it, and the rollback journal stays.
        with suppress(sqlite3.OperationalError):
            connection.execute("PRAGMA journal_mode = WAL")
    made_by = (
        connection.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() if readable_by else None
    )
    if made_by is None or made_by[0] < SCHEMA_VERSION:
        _create_schema(connection)  # new, or made by an older portalloc: its rows stay, missing tables are added


def _create_schema(connection: sqlite3.Connection) -> None:
    """Make the tables and indexes that are missing, and say this schema made them, in one transaction.

    ``readable_by`` is set only when new: adding tables keeps a store readable by older portalloc.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in (_SCHEMA + WORKTREE_TABLES).split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('readable_by', 1)")
        connection.execute(
            "INSERT INTO meta (name, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            (SCHEMA_VERSION,),
        )
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def _readable_by(connection: sqlite3.Connection) -> int | None:
    """The oldest schema that can use this store, or ``None`` before the schema exists."""
    try:
        row = connection.execute("SELECT value FROM meta WHERE name = 'readable_by'").fetchone()
    except sqlite3.OperationalError:  # no such table: a new store
        return None
    return None if row is None else int(row[0])
