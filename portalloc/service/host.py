"""One ledger's side of this machine's host leases: what a write avoids, records, restores and ends.

The write path (``service.allocation``) asks, in this order:

1. before the ledger lock, ``plan``: which wanted keys have a live lease here but are
   missing from the work tree's ledger. Each either comes back with its leased pair
   (git dropped it: a stash, a checkout of a branch that never had it, a reset of
   uncommitted work) or, if a commit in ``HEAD``'s history released it (here or
   upstream, arrived by ``git pull``), has its lease ended and gets a fresh pair;
2. under the ledger lock, ``choose``: one store transaction (``BEGIN IMMEDIATE``) that
   reads every port leased to any other key of any ledger on this machine, lets the
   allocator choose with those ports taken, and leases every row of the ledger about
   to be written. It commits before the ledger's rename, so after a crash a
   handed-out port is leased or in the ledger (a leaked lease is better than a port
   handed out twice);
3. after a release's rename, ``end``: the released keys' leases end, unless another
   work tree of the same repository still holds the key.

Leases are on unless ``PORTALLOC_LEASES`` is ``0`` (or the service is made with
``leases=False``, the command line's ``--no-leases``): then nothing here runs, and
allocation is today's pure, machine-independent one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from portalloc.core.policyrules import policy_span
from portalloc.core.rowdiff import common_ends
from portalloc.errors import PortallocError
from portalloc.machine.identity import LedgerIdentity, identify

if TYPE_CHECKING:
    from portalloc.core.shapes import LedgerShape, Row
    from portalloc.machine.leases import LeaseStore  # opened when a pair is chosen or ended: reads never need it

Key = tuple[str, int]
Pair = tuple[int, int]
R = TypeVar("R")
#: A ledger of either representation (``core.shapes``): ``choose`` gives back one of the same kind.
L = TypeVar("L", bound="LedgerShape")

#: Values of ``PORTALLOC_LEASES`` that turn host leases off.
OFF = ("0", "false", "no", "off")


def leases_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether host leases are on: unless ``PORTALLOC_LEASES`` says ``0`` (``false``, ``no``, ``off``)."""
    env = os.environ if env is None else env
    return env.get("PORTALLOC_LEASES", "1").strip().lower() not in OFF


class Plan:
    """What to do with wanted keys that have a live lease but are missing from the ledger."""

    __slots__ = ("released", "restore")

    def __init__(self) -> None:
        #: Keys that come back with their leased pair.
        self.restore: dict[Key, Pair] = {}
        #: Keys a commit released: ``key -> (leased pair, "abc1234 subject")``; their leases end.
        self.released: dict[Key, tuple[Pair, str]] = {}


class HostLeases:
    """The lease store as seen from the ledger at ``ledger_path``; the store is opened on first need.

    ``store`` is an open store to use (a command that looks at many ledgers opens one);
    else the store in ``state_dir`` (default: ``machine.leases.state_dir()``) is opened,
    once per thread: a SQLite connection belongs to the thread that opened it, and the
    HTTP server calls one service from many threads.
    """

    def __init__(self, ledger_path: Path, store: LeaseStore | None = None, *, state_dir: Path | None = None) -> None:
        self.ledger_path = ledger_path
        self.state_dir = state_dir
        self._identity: LedgerIdentity | None = None
        self._given = store
        self._local = threading.local()
        #: The ledger ``choose`` last leased every row of (committed), to lease only what is new next time.
        self._leased: LedgerShape | None = None

    def identity(self) -> LedgerIdentity:
        """This ledger's identity (worked out once)."""
        if self._identity is None:
            self._identity = identify(self.ledger_path)
        return self._identity

    def store(self) -> LeaseStore:
        """The open store (``LeaseStoreUnavailable`` naming the fixes if it cannot be had)."""
        if self._given is not None:
            return self._given
        store: LeaseStore | None = getattr(self._local, "store", None)
        if store is None:
            from portalloc.machine.leases import open_store

            store = self._local.store = open_store(self.state_dir)
        return store

    def existing_store(self) -> LeaseStore | None:
        """The open store, or ``None`` when this machine has none yet (a read never makes it)."""
        opened = self._given is not None or getattr(self._local, "store", None) is not None
        if not opened:
            from portalloc.machine.leases import STORE_NAME, state_dir

            if not (self.state_dir or state_dir()).joinpath(STORE_NAME).exists():
                return None
        return self.store()

    def register(self, store: LeaseStore) -> int:
        """This ledger's row id, with this copy remembered (inside a transaction)."""
        identity = self.identity()
        ledger_id = store.ledger_id(identity.key, identity.repository, identity.relative)
        store.saw_checkout(ledger_id, identity.ledger, identity.top)
        return ledger_id

    def dropped(self, ledger: LedgerShape) -> list[Key]:
        """This ledger's keys that hold a live lease here but are in neither ``ledger`` (this copy) nor another
        work tree's copy: what git dropped (a key another worktree holds is that worktree's)."""
        store = self.store()
        ledger_id = store.known_ledger_id(self.identity().key)
        if ledger_id is None:
            return []
        missing = [lease.key for lease in store.leases(ledger_id) if ledger.find(*lease.key) is None]
        others = self._other_copies(ledger_id) if missing else []
        return [key for key in missing if not any(_holds(path, key) for path in others)]

    def _other_copies(self, ledger_id: int) -> list[Path]:
        """The copies of this ledger in other work trees that still exist."""
        mine = self.identity().ledger
        return [
            path
            for instance in self.store().instances()
            if instance.ledger_id == ledger_id
            for path in instance.present()
            if path != mine
        ]

    def plan(self, ledger: LedgerShape, wanted: Iterable[Key]) -> Plan:
        """Which wanted keys missing from ``ledger`` come back with their leased pair, and which a commit released."""
        plan = Plan()
        missing = list(dict.fromkeys(key for key in wanted if ledger.find(*key) is None))
        if not missing:
            return plan
        store, identity = self.store(), self.identity()
        ledger_id = store.known_ledger_id(identity.key)
        if ledger_id is None:
            return plan
        for key, pair in store.live_pairs(ledger_id, missing).items():
            commit = None
            if identity.top is not None and identity.relative is not None:
                from portalloc.integrations.leasegit import released_by  # git: only for a leased key that is missing

                commit = released_by(identity.top, identity.relative, *key)
            if commit is None:
                plan.restore[key] = pair
            else:
                plan.released[key] = (pair, commit)
        return plan

    def choose(
        self,
        ledger: L,
        wanted: Iterable[Key],
        plan: Plan,
        assign: Callable[[set[int]], tuple[L, R]],
    ) -> tuple[L, R]:
        """In one store transaction: end the leases a commit released, let ``assign`` choose with every port
        leased to another key taken, and lease every row of the ledger it returns.

        ``assign`` gets the taken ports and returns the new ledger and what the caller wants back.
        """
        store = self.store()
        with store.transaction():
            ledger_id = self.register(store)
            _end_released(store, ledger_id, plan)
            leased = store.leased_ports(policy_span(ledger.policy), {ledger_id: list(wanted)})
            new_ledger, result = assign(leased)
            # Rows of the ledger this object leased last are leased (they are the same objects): only others need it.
            self._lease_rows(store, ledger_id, new_ledger, self._leased)
        self._leased = new_ledger
        return new_ledger, result

    def end_released(self, plan: Plan) -> None:
        """End the leases of the keys ``plan`` found released by a commit (no pair is chosen)."""
        store = self.store()
        with store.transaction():
            _end_released(store, self.register(store), plan)

    def sync(self, ledger: LedgerShape, *, wait_ms: int | None = None) -> int:
        """Lease every row of ``ledger`` (this copy, as read); how many leases were added or moved.

        ``wait_ms``: how long to wait for another process's store transaction (default: the store's own).
        """
        store = self.store()
        with store.transaction() if wait_ms is None else store.transaction(wait_ms):
            return self._lease_rows(store, self.register(store), ledger)

    @staticmethod
    def _lease_rows(store: LeaseStore, ledger_id: int, ledger: LedgerShape, known: LedgerShape | None = None) -> int:
        """Lease the ledger's rows that are not leased as they are; the ledger is the truth for its keys.

        ``known``: a ledger whose rows are leased already (only rows it lacks are looked at).
        """
        if known is not None:
            # By identity: rows ``ledger`` shares with ``known`` at either end are leased (``core.rowdiff``, in
            # C); between them, through one set of ids (``known`` is alive, so no new row can share an id with
            # one of its rows). A write after one allocation looks at one row, not at every row.
            old, rows = known.allocations, ledger.allocations
            head, tail = common_ends(old, rows)
            leased = {id(a) for a in old[head : len(old) - tail]}
            fresh = [a for a in rows[head : len(rows) - tail] if id(a) not in leased]
        else:
            fresh = store.unleased(ledger_id, ledger.allocations)
        store.lease_all(ledger_id, [(allocation.key, allocation.ports) for allocation in fresh])
        return len(fresh)

    def end(self, released: Iterable[Row], why: str = "released") -> list[Key]:
        """After a release's rename: end the leases of ``released`` keys that no other copy of this ledger holds."""
        store = self.store()
        keys = [allocation.key for allocation in released]
        ledger_id = store.known_ledger_id(self.identity().key)
        if ledger_id is None or not keys:
            return []
        others = self._other_copies(ledger_id)
        ended = [key for key in keys if not any(_holds(path, key) for path in others)]
        with store.transaction():
            store.release(ledger_id, ended, why)
        return ended


def _end_released(store: LeaseStore, ledger_id: int, plan: Plan) -> None:
    for key, (_pair, commit) in plan.released.items():
        store.release(ledger_id, [key], f"released by commit {commit}")


def _holds(path: Path, key: Key) -> bool:
    """Whether the ledger at ``path`` holds ``key``; ``True`` when it cannot be read (never end a lease on a guess)."""
    from portalloc.storage.ledger import LedgerFile

    try:
        return LedgerFile(path, create_missing=False).read().find(*key) is not None
    except PortallocError:
        return os.path.exists(path)
