"""The host lease store: this machine's own record of every pair it handed out or saw in a ledger.

Git rewrites work trees at will (stash, checkout, pull, reset, worktrees, clones), so a
ledger file alone cannot say which ports this machine has given out. The store keeps
that outside every work tree, one per user: ``$PORTALLOC_STATE_DIR``, else
``$XDG_STATE_HOME/portalloc``, else ``~/.local/state/portalloc``, file ``leases.sqlite3``.

Why SQLite (the standard library's ``sqlite3``): embedded, no server, crash-safe
transactions, many processes at once (``BEGIN IMMEDIATE`` serialises writers, which is
what makes "choose a pair and lease it" one step across ledgers with different locks),
and indexed by port, so a machine with 100,000 leases still answers in a millisecond.
The file's journal, durability setting and tables are ``machine.leaseschema``'s.

Rows: ``ledgers`` (one per identity, see ``portalloc.machine.identity``), ``checkouts``
(each ledger file seen for an identity: one per work tree), ``leases`` (identity,
key, pair, live or ended and why, when), and ``worktree_leases`` (identity, linked
worktree, key, pair: the pairs a linked worktree uses under ``worktrees: separate``,
never in any ledger; a row is deleted when its pair ends). Which commit released a key is asked of git
when it matters (``integrations.leasegit``), not copied here, so it is never stale. The store
is refused when its directory or file is not the current user's or is writable by
others: whoever can write it can make this machine hand a port out twice.

The API (``open_store`` gives a ``LeaseStore``; every change inside ``transaction()``):
``ledger_id``/``known_ledger_id`` and ``saw_checkout``/``forget_checkout`` name a ledger
and its copies, ``instances()`` lists them; ``leased_ports(span, excluding)`` is what a
new pair must avoid; ``lease(ledger_id, key, pair)`` records or moves a live lease and
``release(ledger_id, keys, why)`` ends them (``lease_all`` records many at once); ``live_pairs`` and
``leases(ledger_id, live=, port=)`` read them. A lease is per ``(ledger, key)``: at most
one live lease per key of a ledger (a unique partial index). A linked worktree's own
pairs are ``store.worktrees`` (``machine.worktreeleases``); ``leased_ports`` counts them
too (but for the ``worktree`` keys it is asked for).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
import weakref
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from portalloc.errors import LeaseStoreUnavailable
from portalloc.machine import statedir
from portalloc.machine.leaseindex import PortIndex
from portalloc.machine.leaseschema import BUSY_TIMEOUT_MS, prepare
from portalloc.machine.worktreeleases import WorktreeKeys, WorktreeLeases

if TYPE_CHECKING:
    from portalloc.core.shapes import Row

#: A ledger row of either representation (``key`` and ``ports`` are what the store looks at).
R = TypeVar("R", bound="Row")

STORE_NAME = statedir.STORE_NAME
#: What every refusal suggests.
#: What a read that uses the store catches to answer without it (a warning, never a failure).
STORE_ERRORS = (LeaseStoreUnavailable, sqlite3.Error)
FIXES = "set PORTALLOC_STATE_DIR to a directory of your own, or turn host leases off (PORTALLOC_LEASES=0)"


Key = tuple[str, int]
#: How long a ledger's copies count as present or gone without looking again (a long-lived API process).
PRESENCE_SECONDS = 1.0
#: Up to how many keys ``live_pairs`` searches the key index once per key rather than read the ledger's leases.
_SEARCHES = 64


class Lease(NamedTuple):
    """One lease: which ledger (``ledger_id``, ``identity``), which key, which pair, live or ended."""

    ledger_id: int
    identity: str
    model: str
    app_num: int
    backend: int
    frontend: int
    live: bool
    leased_at: float
    ended_at: float | None
    ended_why: str | None

    @property
    def key(self) -> Key:
        """``(model, app_num)``."""
        return self.model, self.app_num


class Instance(NamedTuple):
    """A ledger this machine knows: its identity and every copy of it seen (one per work tree)."""

    ledger_id: int
    identity: str
    repository: str | None
    relative: str | None
    checkouts: tuple[Path, ...]

    def present(self) -> tuple[Path, ...]:
        """The copies whose directory still exists (a work tree not removed)."""
        return tuple(path for path in self.checkouts if path.parent.is_dir())


def state_dir() -> Path:
    """Where this user's store lives: ``machine.statedir.state_dir`` (``$PORTALLOC_STATE_DIR``,
    ``$XDG_STATE_HOME/portalloc``, ``~/.local/state/portalloc``), refused when there is no home to put it in."""
    if not statedir.placeable():
        raise LeaseStoreUnavailable(f"there is no home directory (HOME is not set) for the host lease store; {FIXES}")
    return statedir.state_dir()


def _check_owned(path: Path, what: str) -> None:
    """Refuse a store directory or file that another user owns or that others may write."""
    st = os.stat(path)
    if st.st_uid != os.geteuid():
        raise LeaseStoreUnavailable(
            f"the host lease {what} {path} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}); {FIXES}"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise LeaseStoreUnavailable(
            f"the host lease {what} {path} is writable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"chmod go-w it, or {FIXES}"
        )


#: The stores this process has open (``close_open_stores``).
_OPEN: weakref.WeakSet[LeaseStore] = weakref.WeakSet()


def _close_dropped(connection: sqlite3.Connection) -> None:
    """Close the connection of a store nobody holds any more (``LeaseStore``'s finalizer)."""
    with suppress(sqlite3.ProgrammingError):  # dropped by another thread than its own: the collector closes it
        connection.close()


class LeaseStore:
    """This user's host lease store, open. Use ``open_store``; every change runs in ``transaction``."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        _OPEN.add(self)
        # sqlite3 keeps a connection in a reference cycle (its statement cache), so it would outlive a
        # store nobody holds until the cyclic garbage collector runs: closed when the store goes.
        self._closer = weakref.finalize(self, _close_dropped, connection)
        self.connection = connection
        self.path = path
        #: The live leases of one span by port, kept while no other process commits (``machine.leaseindex``).
        #: ``leased_ports`` and ``unleased`` trust it: every statement that changes ``leases`` (only
        #: ``lease_all`` and ``release``) must ``put`` its change into it, and a rollback drops it.
        self._index: PortIndex | None = None
        self._presence: dict[int, tuple[float, bool]] = {}
        #: Ledger ids by identity: a row of ``ledgers`` is never changed or deleted once committed.
        self._ledger_ids: dict[str, int] = {}
        #: Linked worktrees' own pairs (``worktrees: separate``): ``machine.worktreeleases``.
        self.worktrees = WorktreeLeases(connection)

    def close(self) -> None:
        """Close the connection (a transaction left open is rolled back)."""
        _OPEN.discard(self)
        self._closer.detach()
        self.connection.close()

    @contextmanager
    def transaction(self, wait_ms: int = BUSY_TIMEOUT_MS) -> Iterator[LeaseStore]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error.

        Taken before reading what is leased, so that two writers never both see a port
        free: the second waits (``busy_timeout``, at most ``wait_ms``) until the first has
        committed its lease. A read's best-effort sync waits less than a write.
        """
        try:
            if wait_ms != BUSY_TIMEOUT_MS:
                self.connection.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
            try:
                self.connection.execute("BEGIN IMMEDIATE")
            finally:
                if wait_ms != BUSY_TIMEOUT_MS:
                    self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as error:
            raise LeaseStoreUnavailable(f"cannot write the host lease store {self.path}: {error}; {FIXES}") from None
        try:
            yield self
        except BaseException as error:
            self.connection.rollback()
            self._index = None  # it may hold changes that were just rolled back
            self._ledger_ids.clear()  # and ids of ledgers added in it
            if isinstance(error, UnicodeEncodeError):  # a path that is not UTF-8 (its undecodable bytes)
                raise LeaseStoreUnavailable(
                    f"cannot write the host lease store {self.path}: {error.object!r} is not UTF-8 text, "
                    f"which SQLite stores; {FIXES}"
                ) from None
            raise
        try:
            self.connection.commit()
        except sqlite3.Error as error:
            self.connection.rollback()
            self._index = None
            self._ledger_ids.clear()
            raise LeaseStoreUnavailable(f"cannot write the host lease store {self.path}: {error}; {FIXES}") from None

    # --- ledgers and their copies -------------------------------------------------------

    def known_ledger_id(self, identity: str) -> int | None:
        """The row id of ``identity``, or ``None`` if this machine has not seen it."""
        known = self._ledger_ids.get(identity)
        if known is not None:
            return known
        found = self.connection.execute("SELECT id FROM ledgers WHERE identity = ?", (identity,)).fetchone()
        if found is None:
            return None
        self._ledger_ids[identity] = int(found[0])
        return int(found[0])

    def ledger_id(self, identity: str, repository: str | None, relative: str | None) -> int:
        """The row id of ``identity``, added if new (inside a transaction)."""
        found = self.known_ledger_id(identity)
        if found is not None:
            return found
        cursor = self.connection.execute(
            "INSERT INTO ledgers (identity, repository, relative) VALUES (?, ?, ?)", (identity, repository, relative)
        )
        self._ledger_ids[identity] = ledger_id = int(cursor.lastrowid or 0)  # forgotten if rolled back
        return ledger_id

    def saw_checkout(self, ledger_id: int, path: Path, top: Path | None) -> None:
        """Remember that a copy of ledger ``ledger_id`` lives at ``path`` (in the work tree ``top``)."""
        self.connection.execute(
            "INSERT INTO checkouts (ledger_id, path, top, seen_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (ledger_id, path) DO UPDATE SET top = excluded.top, seen_at = excluded.seen_at",
            (ledger_id, str(path), None if top is None else str(top), time.time()),
        )

    def forget_checkout(self, ledger_id: int, path: Path) -> None:
        """Stop listing the copy at ``path`` (its work tree is gone)."""
        self.connection.execute("DELETE FROM checkouts WHERE ledger_id = ? AND path = ?", (ledger_id, str(path)))

    def instances(self) -> list[Instance]:
        """Every ledger this machine knows, with its copies, by identity."""
        copies: dict[int, list[Path]] = {}
        for ledger_id, path in self.connection.execute("SELECT ledger_id, path FROM checkouts ORDER BY path"):
            copies.setdefault(ledger_id, []).append(Path(path))
        rows = self.connection.execute("SELECT id, identity, repository, relative FROM ledgers ORDER BY identity")
        return [Instance(row[0], row[1], row[2], row[3], tuple(copies.get(row[0], ()))) for row in rows]

    # --- leases ---------------------------------------------------------------------------

    def leased_ports(
        self, span: tuple[int, int], excluding: Mapping[int, Iterable[Key]], *, worktree: WorktreeKeys | None = None
    ) -> set[int]:
        """The ports in ``span`` (both ends included) that live leases and worktree leases hold, but for the
        ``excluding`` keys' leases and the ``worktree`` keys' worktree leases.

        ``excluding`` maps a ledger id to the keys whose own leases do not count (a key
        never avoids its own pair); ``worktree`` names a linked worktree's keys whose own
        pairs do not count. Leases of ledgers whose every copy is gone, and worktree
        leases of worktrees whose directory is gone, are left out: a removed CI clone or
        worktree must not exhaust the range (``host prune`` ends them).
        """
        index = self._port_index(span)
        skip = {(ledger_id, *key) for ledger_id, keys in excluding.items() for key in keys}
        ports = index.ports(skip, self._gone(index.ledgers() - set(excluding)))  # a copy of the index's: ours
        ports |= self.worktrees.ports(span, worktree)
        return ports

    def _port_index(self, span: tuple[int, int]) -> PortIndex:
        """The live leases in ``span`` from the covering port indexes, or the one kept (``machine.leaseindex``)."""
        version = self._data_version()
        index = self._index
        if index is not None and index.span == span and index.version == version:
            return index
        columns = "SELECT ledger_id, model, app_num, backend, frontend FROM leases WHERE live AND"
        # Each lease once, from the two port indexes, without the sort a UNION needs to drop doubles.
        rows = self.connection.execute(
            f"{columns} backend BETWEEN ? AND ? UNION ALL {columns} frontend BETWEEN ? AND ? "
            "AND backend NOT BETWEEN ? AND ?",
            (*span, *span, *span),
        )
        self._index = PortIndex(span, version, rows)
        return self._index

    def _current_index(self) -> PortIndex | None:
        """The index kept, if no other process has committed since it was read."""
        index = self._index
        return index if index is not None and index.version == self._data_version() else None

    def _data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: it changes when another connection commits."""
        return int(self.connection.execute("PRAGMA data_version").fetchone()[0])

    def _gone(self, ledger_ids: set[int]) -> set[int]:
        """The ledgers among ``ledger_ids`` that have copies, none of which still exists."""
        now = time.monotonic()
        known = {
            i: here for i, (when, here) in self._presence.items() if i in ledger_ids and now - when < PRESENCE_SECONDS
        }
        present: dict[int, bool] = {}
        for chunk in _chunks(sorted(ledger_ids - set(known))):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT ledger_id, path FROM checkouts WHERE ledger_id IN ({marks})"  # only "?" marks go in
            for ledger_id, path in self.connection.execute(query, chunk):
                if not present.get(ledger_id):
                    present[ledger_id] = os.path.isdir(os.path.dirname(path))
        self._presence.update((ledger_id, (now, here)) for ledger_id, here in present.items())
        return {ledger_id for ledger_id, here in {**known, **present}.items() if not here}

    def live_pairs(self, ledger_id: int, keys: Collection[Key] | None = None) -> dict[Key, tuple[int, int]]:
        """The pair of every key of ledger ``ledger_id`` (of ``keys``, if given) that holds a live lease."""
        query = "SELECT model, app_num, backend, frontend FROM leases WHERE live AND ledger_id = ?"
        if keys is None or len(keys) > _SEARCHES:
            rows = self.connection.execute(query, (ledger_id,))
            held = {(model, app_num): (backend, frontend) for model, app_num, backend, frontend in rows}
            return held if keys is None else {key: held[key] for key in keys if key in held}
        found = {}
        for key in keys:  # a search of the live key index each: a few µs, where the scan costs ~1 µs a lease
            row = self.connection.execute(query + " AND model = ? AND app_num = ?", (ledger_id, *key)).fetchone()
            if row is not None:
                found[key] = (row[2], row[3])
        return found

    def unleased(self, ledger_id: int, rows: Iterable[R]) -> list[R]:
        """The rows of ledger ``ledger_id`` whose key holds no live lease on exactly the row's pair.

        A write asks right after ``leased_ports`` has read the leases of its span: the rows
        with a port in it are looked up in that index (the ledger's leases are not read a
        second time), the others in the store; with no current index, all in the store.
        """
        index = self._current_index()
        if index is None:
            held = self.live_pairs(ledger_id)
            return [row for row in rows if held.get(row.key) != row.ports]
        (low, high), pairs = index.span, index.pairs
        unleased, outside = [], []
        for row in rows:
            pair = row.ports
            if low <= pair[0] <= high or low <= pair[1] <= high:
                if pairs.get((ledger_id, *row.key)) != pair:
                    unleased.append(row)
            else:
                outside.append(row)
        if outside:
            held = self.live_pairs(ledger_id, [row.key for row in outside])
            unleased += [row for row in outside if held.get(row.key) != row.ports]
        return unleased

    def leases(self, ledger_id: int | None = None, *, live: bool | None = True, port: int | None = None) -> list[Lease]:
        """Leases, by ledger and key: of one ledger or all, live or ended or both, on one port or any."""
        where, args = ["1"], []  # type: list[str], list[object]
        if ledger_id is not None:
            where.append("l.ledger_id = ?")
            args.append(ledger_id)
        if live is not None:
            # Spelled out, not ``live = ?``: SQLite uses the partial port indexes (``WHERE live``) only
            # for a condition it can see implies theirs (a bound parameter made each port a full scan).
            where.append("l.live" if live else "NOT l.live")
        if port is not None and live:
            # One search in each live port index (an OR of the two columns made SQLite scan one index
            # whole: 0.6 ms a port, 12 s for an import of 10,000 rows that asks about each of its ports).
            where.append(
                "l.rowid IN (SELECT rowid FROM leases WHERE live AND backend = ? "
                "UNION ALL SELECT rowid FROM leases WHERE live AND frontend = ?)"
            )
            args += [port, port]
        elif port is not None:
            where.append("(l.backend = ? OR l.frontend = ?)")  # ended leases have no port index: a scan
            args += [port, port]
        query = _LEASE_SELECT + " WHERE " + " AND ".join(where) + " ORDER BY d.identity, l.model, l.app_num"
        return [_lease(row) for row in self.connection.execute(query, args)]

    def live_by_port(
        self, *, model: str | None = None, ports: Iterable[int] | None = None, limit: int | None = None
    ) -> tuple[int, list[Lease]]:
        """How many live leases there are (of ``model``, on one of ``ports``, if given), and the first ``limit``
        of them by port (all with ``None``), read through the port indexes: a listing of 100,000 leases
        need not load them all to show the first hundred."""
        where, args = "l.live", []  # type: str, list[object]
        if model is not None:
            where += " AND l.model = ?"
            args.append(model)
        if ports is not None:
            marks = ",".join("?" * len(chosen := sorted(set(ports))))  # only "?" marks go in
            where += f" AND (l.backend IN ({marks}) OR l.frontend IN ({marks}))"
            args += [*chosen, *chosen]
        count = self.connection.execute(f"SELECT count(*) FROM leases l WHERE {where}", args).fetchone()[0]
        cut = "" if limit is None else f" LIMIT {int(limit)}"
        query = f"{_LEASE_SELECT} WHERE {where} ORDER BY l.backend, l.frontend, d.identity, l.model, l.app_num{cut}"
        return int(count), [_lease(row) for row in self.connection.execute(query, args)]

    def claimed_twice(self) -> list[int]:
        """The ports that the live leases of more than one key hold, in order."""
        rows = self.connection.execute(
            "SELECT port FROM (SELECT backend AS port FROM leases WHERE live UNION ALL "
            "SELECT frontend FROM leases WHERE live AND frontend != backend) GROUP BY port HAVING count(*) > 1 "
            "ORDER BY port"
        )
        return [port for (port,) in rows]

    def lease(self, ledger_id: int, key: Key, pair: tuple[int, int]) -> None:
        """Record (or move) the live lease of ``key`` in ledger ``ledger_id`` on ``pair``."""
        self.lease_all(ledger_id, [(key, pair)])

    def lease_all(self, ledger_id: int, leases: Iterable[tuple[Key, tuple[int, int]]]) -> None:
        """``lease`` of each ``(key, pair)``, in one statement run for all (a batch's rows)."""
        now, given = time.time(), list(leases)
        self.connection.executemany(
            "INSERT INTO leases (ledger_id, model, app_num, backend, frontend, live, leased_at) "
            "VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT (ledger_id, model, app_num) WHERE live DO UPDATE SET "
            "backend = excluded.backend, frontend = excluded.frontend",
            [(ledger_id, model, app_num, backend, frontend, now) for (model, app_num), (backend, frontend) in given],
        )
        if self._index is not None:
            for key, pair in given:
                self._index.put((ledger_id, *key), pair)

    def release(self, ledger_id: int, keys: Iterable[Key], why: str) -> int:
        """End the live leases of ``keys`` in ledger ``ledger_id``, saying ``why``; how many ended."""
        now = time.time()
        ended = 0
        for model, app_num in keys:
            cursor = self.connection.execute(
                "UPDATE leases SET live = 0, ended_at = ?, ended_why = ? "
                "WHERE live AND ledger_id = ? AND model = ? AND app_num = ?",
                (now, why, ledger_id, model, app_num),
            )
            ended += cursor.rowcount
            if self._index is not None:
                self._index.put((ledger_id, model, app_num), None)
        return ended


_LEASE_SELECT = (
    "SELECT l.ledger_id, d.identity, l.model, l.app_num, l.backend, l.frontend, l.live, "
    "l.leased_at, l.ended_at, l.ended_why FROM leases l JOIN ledgers d ON d.id = l.ledger_id"
)


def _lease(row: Any) -> Lease:
    # SQLite hands back the declared types (INTEGER, TEXT, REAL), so only ``live`` is converted.
    ledger_id, identity, model, app_num, backend, frontend, live, leased_at, ended_at, why = row
    return Lease(ledger_id, identity, model, app_num, backend, frontend, bool(live), leased_at, ended_at, why)


def _chunks(values: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def open_store(directory: Path | None = None, *, create: bool = True) -> LeaseStore:
    """Open (and, with ``create``, make) this user's store; ``LeaseStoreUnavailable`` naming the fixes if not.

    The directory is made private (0700); the directory and the file must be the
    current user's and not writable by others (root too is refused a store that is
    not its own).
    """
    directory = state_dir() if directory is None else directory
    path = directory / STORE_NAME
    try:
        if create:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_owned(directory, "directory")
        if not path.exists():
            if not create:
                raise LeaseStoreUnavailable(f"there is no host lease store at {path} yet")
            # Made private before SQLite opens it: the leases are nobody else's to write.
            with suppress(FileExistsError):  # another process made it a moment ago
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        _check_owned(path, "store")
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise LeaseStoreUnavailable(f"cannot open the host lease store in {directory}: {reason}; {FIXES}") from None
    try:
        prepare(connection)
    except (OSError, sqlite3.Error) as error:
        connection.close()
        raise LeaseStoreUnavailable(f"cannot use the host lease store {path}: {error}; {FIXES}") from None
    return LeaseStore(connection, path)


def close_open_stores() -> None:
    """Close every store this process has open, as the interpreter's teardown would.

    For a process that ends without that teardown (``cli.entry.leave``): the last
    connection to close checkpoints the write-ahead log into the store and removes it.
    Left open, every later process would read the whole log again as it opens the store,
    and the log would grow with every command (300 ``get``s: 6 MB, and each ``get`` of a
    new key 83 → 140 ms and more).
    """
    for store in list(_OPEN):
        store.close()
