"""A linked worktree's own pairs in the host lease store (``worktrees: separate``): the ``worktree_leases`` rows.

One row per repository-and-path identity (``ledgers``), linked worktree (its top
directory) and key, with the pair; a row is deleted when its pair ends (a release in the
worktree, or ``host prune`` once git no longer counts the worktree). The table is part
of the store's one schema (``machine.leases``); ``LeaseStore.worktrees`` is this class
over the store's connection, and every change runs inside the store's ``transaction()``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

Key = tuple[str, int]
#: What ``ports`` leaves out of a worktree's own leases: ``(ledger_id, worktree, keys)``.
WorktreeKeys = tuple[int, Path, Iterable[Key]]
#: The first store schema with worktree leases. A store that holds one is made ``readable_by`` it:
#: an older portalloc would not see those ports and could hand them out again.
WORKTREE_SCHEMA = 2
#: The tables, made with the store's others (``machine.leases``).
WORKTREE_TABLES = """
CREATE TABLE IF NOT EXISTS worktree_leases (
    ledger_id INTEGER NOT NULL REFERENCES ledgers(id),
    worktree TEXT NOT NULL,
    model TEXT NOT NULL,
    app_num INTEGER NOT NULL,
    backend INTEGER NOT NULL,
    frontend INTEGER NOT NULL,
    leased_at REAL NOT NULL,
    PRIMARY KEY (ledger_id, worktree, model, app_num)
);
CREATE INDEX IF NOT EXISTS worktree_leases_backend ON worktree_leases (backend);
CREATE INDEX IF NOT EXISTS worktree_leases_frontend ON worktree_leases (frontend);
"""


class WorktreeLease(NamedTuple):
    """A linked worktree's own pair for one key of a ledger."""

    ledger_id: int
    identity: str
    worktree: Path
    model: str
    app_num: int
    backend: int
    frontend: int
    leased_at: float

    @property
    def key(self) -> Key:
        """``(model, app_num)``."""
        return self.model, self.app_num

    @property
    def ports(self) -> tuple[int, int]:
        """``(backend, frontend)``."""
        return self.backend, self.frontend


class WorktreeLeases:
    """The ``worktree_leases`` rows of one store connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def pair(self, ledger_id: int, worktree: Path, key: Key) -> tuple[int, int] | None:
        """The pair ``worktree`` uses for ``key`` of ledger ``ledger_id``, if it has one."""
        row = self.connection.execute(
            "SELECT backend, frontend FROM worktree_leases WHERE ledger_id = ? AND worktree = ? "
            "AND model = ? AND app_num = ?",
            (ledger_id, str(worktree), *key),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def lease(self, ledger_id: int, worktree: Path, key: Key, pair: tuple[int, int]) -> None:
        """Record (or move) ``worktree``'s own pair for ``key`` of ledger ``ledger_id``."""
        self.connection.execute(
            "INSERT INTO worktree_leases (ledger_id, worktree, model, app_num, backend, frontend, leased_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ledger_id, worktree, model, app_num) DO UPDATE SET "
            "backend = excluded.backend, frontend = excluded.frontend, leased_at = excluded.leased_at",
            (ledger_id, str(worktree), key[0], key[1], pair[0], pair[1], time.time()),
        )
        # From now on an older portalloc, which would not avoid these ports, is refused this store.
        self.connection.execute(
            "UPDATE meta SET value = ? WHERE name = 'readable_by' AND value < ?", (WORKTREE_SCHEMA, WORKTREE_SCHEMA)
        )

    def leases(self, ledger_id: int | None = None, worktree: Path | None = None) -> list[WorktreeLease]:
        """Worktree leases, of one ledger or all, of one worktree or all, by identity, worktree and key."""
        query = (
            "SELECT w.ledger_id, d.identity, w.worktree, w.model, w.app_num, w.backend, w.frontend, w.leased_at "
            "FROM worktree_leases w JOIN ledgers d ON d.id = w.ledger_id "
            "WHERE (?1 IS NULL OR w.ledger_id = ?1) AND (?2 IS NULL OR w.worktree = ?2) "
            "ORDER BY d.identity, w.worktree, w.model, w.app_num"
        )
        args = (ledger_id, None if worktree is None else str(worktree))
        return [
            WorktreeLease(ledger_id, identity, Path(tree), model, app_num, backend, frontend, at)
            for ledger_id, identity, tree, model, app_num, backend, frontend, at in self.connection.execute(query, args)
        ]

    def end(self, ledger_id: int, worktree: Path, keys: Iterable[Key] | None = None) -> int:
        """End the pairs ``worktree`` holds for ledger ``ledger_id``: every one (the worktree is gone), or
        those of ``keys`` (released); how many ended."""
        where = "DELETE FROM worktree_leases WHERE ledger_id = ? AND worktree = ?"
        if keys is None:
            return self.connection.execute(where, (ledger_id, str(worktree))).rowcount
        query = f"{where} AND model = ? AND app_num = ?"
        return sum(self.connection.execute(query, (ledger_id, str(worktree), *key)).rowcount for key in keys)

    def ports(self, span: tuple[int, int], skip: WorktreeKeys | None = None) -> set[int]:
        """The ports in ``span`` of worktree leases whose worktree still exists, but for ``skip``'s keys.

        A worktree whose directory is gone (``git worktree remove``) is not avoided from that moment.
        """
        own = set() if skip is None else {(skip[0], str(skip[1]), *key) for key in skip[2]}
        present: dict[str, bool] = {}
        ports: set[int] = set()
        columns = "SELECT ledger_id, worktree, model, app_num, backend, frontend FROM worktree_leases WHERE"
        rows = self.connection.execute(
            f"{columns} backend BETWEEN ? AND ? UNION {columns} frontend BETWEEN ? AND ?", (*span, *span)
        )
        for ledger_id, worktree, model, app_num, backend, frontend in rows:
            if (ledger_id, worktree, model, app_num) in own:
                continue
            if worktree not in present:
                present[worktree] = os.path.isdir(worktree)
            if present[worktree]:
                ports.update(port for port in (backend, frontend) if span[0] <= port <= span[1])
        return ports
