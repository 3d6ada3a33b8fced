"""The contenders, each behind the same small interface, so the driver times them alike.

* ``PortallocStore``: ``portalloc.PortAllocationService`` over a JSON ledger.
* ``SqliteStore``: the design the platform used before portalloc, re-created here: a
  ``port_configurations`` table with UNIQUE(model, app_num), UNIQUE(backend_port) and
  UNIQUE(frontend_port), check-then-insert with retries, one connection per process,
  SQLite's default durability (rollback journal, ``synchronous=FULL``).
* ``PortForStore``: port-for's ``PortStore`` (an INI file of ``name = port``). It keeps
  one port per name, so it does half of portalloc's work per key, and it neither locks
  nor fsyncs.

Every store hands out pairs from the same wide sequence (``POLICY``) where it can, so
the ledgers hold the same numbers of rows at the same sizes.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterable, Sequence
from itertools import filterfalse
from pathlib import Path
from typing import Protocol

Key = tuple[str, int]
Pair = tuple[int, int]

#: Wide enough for 10,000 rows plus the batches on top, and below Linux's ephemeral range
#: (32768+), where portalloc would refuse to hand ports out: 11,000 pairs, 10001/21001 … 21000/32000.
BACKEND_START, FRONTEND_START, STEP, MAX_PORT = 10001, 21001, 1, 32767


def state_dir(path: Path) -> Path:
    """The host lease store of the scenario whose ledger is ``path``: one per scenario, as if each ran on its own
    machine. One store for all would let the 10,000-row ledger's leases keep every other scenario's ledgers
    off those ports, and the wide range would run out."""
    return path.with_suffix(".state")


def keys_for(n: int, model_count: int = 10, prefix: str = "model") -> list[Key]:
    """``n`` distinct keys spread over ``model_count`` models, the way a platform's ledger looks."""
    return [(f"{prefix}_{i % model_count}", i // model_count + 1) for i in range(n)]


class Store(Protocol):
    """What the driver needs from a contender."""

    name: str

    def lookup(self, key: Key) -> object: ...

    def allocate(self, key: Key) -> object: ...

    def allocate_many(self, keys: Sequence[Key]) -> list[object]: ...

    def release(self, keys: Iterable[Key]) -> None: ...

    def snapshot(self) -> dict[Key, object]: ...


# --- portalloc -----------------------------------------------------------------------------


class PortallocStore:
    """``PortAllocationService``: lock-free cached lookups, locked atomic writes."""

    name = "portalloc"

    #: Whether new allocations bind-test their ports (portalloc's default, as port-for does).
    probe = True

    def __init__(self, path: Path) -> None:
        from portalloc import PortAllocationService

        self.path = path
        self.service = PortAllocationService(path, probe=self.probe, state_dir=state_dir(path))

    @staticmethod
    def create(path: Path, n: int) -> None:
        """Write a ledger of ``n`` allocations with the wide policy."""
        from portalloc.core.allocator import assign_many
        from portalloc.core.models import Ledger, PortPolicy
        from portalloc.storage.codec import dump_ledger
        from portalloc.storage.files import atomic_write

        policy = PortPolicy(backend_start=BACKEND_START, frontend_start=FRONTEND_START, step=STEP, max_port=MAX_PORT)
        ledger, _ = assign_many(Ledger(policy=policy), keys_for(n))
        atomic_write(path, dump_ledger(ledger))

    def lookup(self, key: Key) -> object:
        return self.service.get_ports(*key)

    def allocate(self, key: Key) -> object:
        return self.service.get_or_allocate_ports(*key).ports

    def allocate_many(self, keys: Sequence[Key]) -> list[object]:
        return [allocation.ports for allocation in self.service.allocate_many(keys)]

    def release(self, keys: Iterable[Key]) -> None:
        # Through the service, so that the host leases end too: a lease left live keeps its
        # ports from every later allocation, and a run of batches would use the range up.
        self.service.release_many(list(keys))
        # Untimed: re-read and build the lookup index, used-port set and model names, as a
        # process that has been allocating has them, so the next timed call starts warm.
        ledger = self.service.ledger()
        ledger.find("", 0)
        _ = ledger.used_ports, ledger.model_names

    def snapshot(self) -> dict[Key, object]:
        from portalloc.storage.ledger import LedgerFile

        return {a.key: a.ports for a in LedgerFile(self.path).read().allocations}


class PortallocReservedStore(PortallocStore):
    """The same, with three reserved ports and one model's pool in the policy (what a platform's ledger holds)."""

    name = "portalloc-reserved"

    @staticmethod
    def create(path: Path, n: int) -> None:
        """Write a ledger of ``n`` allocations with the wide policy, reserved ports and a pool."""
        from portalloc.core.allocator import assign_many
        from portalloc.core.models import Ledger, Pool, PortPolicy
        from portalloc.storage.codec import dump_ledger
        from portalloc.storage.files import atomic_write

        policy = PortPolicy(
            backend_start=BACKEND_START,
            frontend_start=FRONTEND_START,
            step=STEP,
            max_port=MAX_PORT,
            reserved=[[15000, 15000], [25000, 25000], [30000, 30000]],
            pools=[Pool(model="pooled", first=10_900, last=10_999)],
        )
        ledger, _ = assign_many(Ledger(policy=policy), keys_for(n))
        atomic_write(path, dump_ledger(ledger))


class PortallocNoProbeStore(PortallocStore):
    """The same, with OS probing off (``probe=False``): the ledger's work alone, as SQLite does."""

    name = "portalloc-noprobe"
    probe = False


class PortallocNoLeasesStore(PortallocStore):
    """The same, with host leases off (``leases=False``): what the machine's lease store costs a write."""

    name = "portalloc-noleases"

    def __init__(self, path: Path) -> None:
        from portalloc import PortAllocationService

        self.path = path
        self.service = PortAllocationService(path, probe=self.probe, leases=False, state_dir=state_dir(path))


class PortallocHostStore(PortallocStore):
    """The same, on a machine whose own lease store (beside the ledger) already holds ``LIVE`` + ``ENDED`` leases
    of other ledgers, their ports spread over 1024-65535 as many checkouts would leave them."""

    name = "portalloc-host-100"
    LIVE, ENDED = 90, 10

    def __init__(self, path: Path) -> None:
        from portalloc import PortAllocationService

        self.path = path
        self.service = PortAllocationService(path, probe=self.probe, state_dir=state_dir(path))

    @classmethod
    def create(cls, path: Path, n: int) -> None:
        """The ledger, and a lease store with leases of ``LIVE + ENDED`` keys of 1,000 other ledgers."""
        from portalloc.machine.leases import open_store

        PortallocStore.create(path, n)
        generator = random.Random(cls.LIVE)
        checkouts = path.parent / f"{path.stem}-checkouts"
        store = open_store(state_dir(path))
        with store.transaction():
            ids = []
            for i in range(1000):
                (checkouts / str(i)).mkdir(parents=True, exist_ok=True)  # present: their leases are avoided
                ids.append(store.ledger_id(f"path:{checkouts / str(i) / 'portalloc.json'}", None, None))
                store.saw_checkout(ids[-1], checkouts / str(i) / "portalloc.json", None)
            for j in range(cls.LIVE + cls.ENDED):
                backend = generator.randrange(1024, 65535)
                store.lease(ids[j % 1000], (f"m{j}", j), (backend, generator.randrange(1024, 65535)))
                if j >= cls.LIVE:
                    store.release(ids[j % 1000], [(f"m{j}", j)], "released")
        store.close()


class PortallocBusyHostStore(PortallocHostStore):
    """``PortallocHostStore`` with 30,000 live and 70,000 ended leases."""

    name = "portalloc-host-100k"
    LIVE, ENDED = 30_000, 70_000


# --- the SQLite baseline -------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS port_configurations (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    app_num INTEGER NOT NULL,
    backend_port INTEGER NOT NULL,
    frontend_port INTEGER NOT NULL,
    UNIQUE (model, app_num),
    UNIQUE (backend_port),
    UNIQUE (frontend_port)
)
"""


#: The table exactly as the old allocator created it (``is_available`` included), for ``portalloc import``.
ORIGINAL_SCHEMA = """
CREATE TABLE port_configurations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model VARCHAR(100) NOT NULL,
    app_num INTEGER NOT NULL,
    backend_port INTEGER NOT NULL,
    frontend_port INTEGER NOT NULL,
    is_available BOOLEAN DEFAULT 0
)
"""


def create_original_table(path: Path, n: int) -> None:
    """An old database of ``n`` in-use rows, on the same sequence as the other stores."""
    connection = sqlite3.connect(path)
    connection.execute(ORIGINAL_SCHEMA)
    connection.executemany(
        "INSERT INTO port_configurations (model, app_num, backend_port, frontend_port, is_available) "
        "VALUES (?, ?, ?, ?, 0)",
        [
            (model, app_num, BACKEND_START + k * STEP, FRONTEND_START + k * STEP)
            for k, (model, app_num) in enumerate(keys_for(n))
        ],
    )
    connection.commit()
    connection.close()


class SqliteStore:
    """The old design: look, pick the lowest free pair, INSERT; on a UNIQUE violation sleep and retry."""

    name = "sqlite"
    retries = 10

    def __init__(self, path: Path) -> None:
        self.path = path
        # One connection per process, autocommit: every INSERT is its own durable transaction.
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.connection.execute(SCHEMA)

    @staticmethod
    def create(path: Path, n: int) -> None:
        """A database of ``n`` rows on the same sequence as portalloc's ledger."""
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute(SCHEMA)
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO port_configurations (model, app_num, backend_port, frontend_port) VALUES (?, ?, ?, ?)",
            [
                (model, app_num, BACKEND_START + k * STEP, FRONTEND_START + k * STEP)
                for k, (model, app_num) in enumerate(keys_for(n))
            ],
        )
        connection.execute("COMMIT")
        connection.close()

    def lookup(self, key: Key) -> object:
        return self.connection.execute(
            "SELECT backend_port, frontend_port FROM port_configurations WHERE model = ? AND app_num = ?", key
        ).fetchone()

    def _next_pair(self) -> Pair:
        used = {
            port
            for (port,) in self.connection.execute(
                "SELECT backend_port FROM port_configurations UNION ALL SELECT frontend_port FROM port_configurations"
            )
        }
        # The same C-speed scan portalloc's allocator uses, so storage is what differs.
        backends = range(BACKEND_START, FRONTEND_START, STEP)
        for backend in filterfalse(used.__contains__, backends):
            frontend = backend - BACKEND_START + FRONTEND_START
            if frontend <= MAX_PORT and frontend not in used:
                return backend, frontend
        raise RuntimeError("no free pair")

    def _check_then_insert(self, key: Key) -> Pair | None:
        row = self.lookup(key)
        if row is not None:
            return row  # type: ignore[no-any-return]
        backend, frontend = self._next_pair()
        try:
            self.connection.execute(
                "INSERT INTO port_configurations (model, app_num, backend_port, frontend_port) VALUES (?, ?, ?, ?)",
                (*key, backend, frontend),
            )
        except sqlite3.IntegrityError:
            return None  # someone took the pair (or the key) between our check and our insert
        return backend, frontend

    def allocate(self, key: Key) -> object:
        for attempt in range(self.retries):
            pair = self._check_then_insert(key)
            if pair is not None:
                return pair
            time.sleep(random.uniform(0.001, 0.002) * (attempt + 1))
        raise RuntimeError(f"gave up on {key} after {self.retries} retries")

    def allocate_many(self, keys: Sequence[Key]) -> list[object]:
        # Its best case: one write transaction for the whole batch.
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            pairs: list[object] = []
            for key in keys:
                pair = self._check_then_insert(key)
                if pair is None:
                    raise RuntimeError("conflict inside an exclusive transaction")
                pairs.append(pair)
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        return pairs

    def release(self, keys: Iterable[Key]) -> None:
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.executemany("DELETE FROM port_configurations WHERE model = ? AND app_num = ?", list(keys))
        self.connection.execute("COMMIT")

    def snapshot(self) -> dict[Key, object]:
        rows = self.connection.execute("SELECT model, app_num, backend_port, frontend_port FROM port_configurations")
        return {(model, app_num): (backend, frontend) for model, app_num, backend, frontend in rows}


# --- port-for ------------------------------------------------------------------------------


def port_for_name(key: Key) -> str:
    """port-for's name for a key (it refuses ``=`` and ``:``)."""
    return f"{key[0]}-{key[1]}"


class PortForStore:
    """port-for's ``PortStore``: re-reads and rewrites the whole INI file on every bind, no lock."""

    name = "port-for"

    def __init__(self, path: Path) -> None:
        from port_for import PortStore

        self.path = path
        self.store = PortStore(str(path))

    @staticmethod
    def create(path: Path, n: int) -> None:
        """A store of ``n`` names on ports port-for itself would pick (its 'good' ports), in its own format."""
        from configparser import DEFAULTSECT, ConfigParser

        import port_for

        ports = sorted(port_for.available_good_ports())[:n]
        parser = ConfigParser()
        for key, port in zip(keys_for(n), ports, strict=True):
            parser.set(DEFAULTSECT, port_for_name(key), str(port))
        with open(path, "w") as handle:
            parser.write(handle)

    def lookup(self, key: Key) -> object:
        # port-for's way to ask for a name's port: bind returns the existing one.
        return self.store.bind_port(port_for_name(key))

    def allocate(self, key: Key) -> object:
        return self.store.bind_port(port_for_name(key))

    def allocate_many(self, keys: Sequence[Key]) -> list[object]:
        # No batch API: one bind (one read and one rewrite of the file) per key.
        return [self.store.bind_port(port_for_name(key)) for key in keys]

    def release(self, keys: Iterable[Key]) -> None:
        from configparser import DEFAULTSECT

        parser = self.store._get_parser()
        for key in keys:
            parser.remove_option(DEFAULTSECT, port_for_name(key))
        self.store._save(parser)

    def snapshot(self) -> dict[Key, object]:
        found: dict[Key, object] = {}
        for name, port in self.store.bound_ports():
            model, _, app = name.rpartition("-")
            found[(model, int(app))] = port
        return found


STORES: dict[str, type[PortallocStore] | type[SqliteStore] | type[PortForStore]] = {
    "portalloc": PortallocStore,
    "portalloc-noprobe": PortallocNoProbeStore,
    "portalloc-reserved": PortallocReservedStore,
    "portalloc-noleases": PortallocNoLeasesStore,
    "portalloc-host-100": PortallocHostStore,
    "portalloc-host-100k": PortallocBusyHostStore,
    "sqlite": SqliteStore,
    "port-for": PortForStore,
}


def open_store(name: str, path: Path) -> Store:
    """The contender ``name`` over the file at ``path``."""
    return STORES[name](path)


def store_file(directory: Path, name: str, label: str) -> Path:
    """Where contender ``name`` keeps its data for the scenario ``label``."""
    suffix = {"sqlite": ".db", "port-for": ".conf"}.get(name, ".json")
    return Path(directory) / f"{label}-{name}{suffix}"
