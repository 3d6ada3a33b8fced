"""``PortAllocationService``: the ledger file + the pure allocator + pre-configured ports.

This is the API the platform's scaffolding code calls. It never prints or exits;
failures are ``PortallocError`` subclasses, and a pre-configured pair that could not
be honoured is reported on the ``portalloc`` logger as a warning.

New allocations are OS-aware unless probing is off (``probe=False`` or the ledger
policy's ``probe``): under the ledger lock, between reading and writing, the pairs the
pure allocator proposes are bind-tested (``portalloc.machine.probe``) and any port the machine
holds is passed back to the allocator as taken, until every proposed pair is free.
Ports in the OS ephemeral range, and those the OS reserves (Linux
``ip_local_reserved_ports``), are taken from the start.

The policy (ranges, reserved ports, per-model pools) is changed here too, under the
lock and only when every allocation still fits (``allocator.change_policy``).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from portalloc.core import allocator
from portalloc.core.allocator import Conflict, Usage
from portalloc.core.keys import app_dir, check_key, check_model_name, names_by_nfc
from portalloc.core.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.core.models import Allocation, Ledger, Pool, PortPair, PortPolicy, build_policy, merge_ranges
from portalloc.core.names import KnownModels
from portalloc.errors import (
    AppDirUnavailable,
    AppsDirLooksWrong,
    AppsDirMissing,
    NoFreePair,
    PolicyRefused,
    PortallocError,
)
from portalloc.machine import live, probe
from portalloc.storage.ledger import LedgerFile, read_bytes
from portalloc.storage.paths import find_ledger
from portalloc.storage.preconfig import load_preconfig

if TYPE_CHECKING:
    from portalloc.integrations.importers import ImportReport, ImportRow

logger = logging.getLogger("portalloc")


class PortAllocationService:
    """Allocate, look up and release port pairs in one ledger file.

    ``ledger_path`` defaults to the ledger found from the current directory (see
    ``portalloc.storage.paths.find_ledger``). ``config_file`` is an optional
    ``port_config.json``. ``policy`` is used when the ledger does not exist yet; an
    existing ledger keeps its own, and a different explicit one is an error on write.
    ``probe=False`` makes new allocations ignore what the OS holds (as the policy's
    ``probe: false`` does), so the ledger stays a pure function of its contents.

    The API is zero-configuration: the first write creates a missing ledger (its
    directory must exist). ``create_ledger=False`` makes that write an error instead
    (``LedgerMissing``), as the command line does away from the repository root.
    A new model that looks the same as one the ledger has (``model_а`` with a Cyrillic
    a beside ``model_a``) is refused (``ConfusableName``) unless ``allow_confusable``.
    Once the ledger has been seen, a write never creates it again (see ``LedgerFile``).
    """

    def __init__(
        self,
        ledger_path: str | Path | None = None,
        config_file: str | Path | None = None,
        *,
        policy: PortPolicy | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        probe: bool = True,
        create_ledger: bool = True,
        allow_confusable: bool = False,
    ) -> None:
        _check_lock_timeout(lock_timeout)
        self.ledger_path = Path(ledger_path) if ledger_path is not None else find_ledger(Path.cwd())
        self.config_file = Path(config_file) if config_file is not None else None
        self.policy = policy
        #: ``False`` turns OS probing off for this service whatever the ledger's policy says.
        self.probe = probe
        #: ``True`` lets a new model that looks like an existing one in (``portalloc.core.names``).
        self.allow_confusable = allow_confusable
        self._file = LedgerFile(
            self.ledger_path, lock_timeout, Ledger(policy=policy) if policy else None, create_missing=create_ledger
        )
        self._preconfig: dict[tuple[str, int], tuple[int, int]] | None = None

    # --- reading ---------------------------------------------------------------------

    def ledger(self) -> Ledger:
        """The ledger as it is now (lock-free; re-parsed only when the file changed)."""
        return self._file.read()

    def get_ports(self, model_name: str, app_num: int) -> PortPair | None:
        """The pair of ``(model_name, app_num)`` if it has one; never allocates."""
        return self._file.read().find(*check_key(model_name, app_num))

    def get_all_allocations(self) -> list[PortPair]:
        """Every allocation, sorted by ``(model, app_num)``."""
        return list(self._file.read().allocations)

    def check_port_conflicts(self) -> list[Conflict]:
        """Ports held more than once and keys that appear more than once (empty when clean)."""
        return allocator.find_conflicts(self._file.read().allocations)

    def policy_warnings(self) -> list[str]:
        """Apps outside their model's pool and apps on a reserved port: they stay, and are reported."""
        return allocator.policy_warnings(self._file.read())

    def stats(self) -> Usage:
        """Counts of allocations, models, capacity and free pairs."""
        return allocator.usage(self._file.read())

    # --- writing ---------------------------------------------------------------------

    def get_or_allocate_ports(self, model_name: str, app_num: int) -> PortPair:
        """The pair of ``(model_name, app_num)``, allocating the lowest free one if it has none."""
        existing = self.get_ports(model_name, app_num)
        if existing is not None:
            return existing
        return self.allocate_many([(model_name, app_num)])[0]

    def allocate_many(self, keys: Iterable[tuple[str, int]]) -> list[PortPair]:
        """``get_or_allocate_ports`` for many keys under one lock and one write, in order.

        No keys take no lock, but a ledger that is not valid is still refused (``LedgerCorrupt``).
        """
        wanted = [check_key(model, app_num) for model, app_num in keys]
        if not wanted:
            self._file.read()
            return []
        preconfig = self._load_preconfig()

        shared_ports: list[int] = []
        unprobed: list[PortPolicy] = []

        def change(ledger: Ledger) -> tuple[Ledger, list[allocator.Assignment]]:
            self._check_policy(ledger)
            shared_ports[:] = _shared_ports(ledger)
            if not (self.probe and ledger.policy.probe):
                unprobed[:] = [ledger.policy]
                return allocator.assign_many(
                    ledger, wanted, preferred=preconfig, allow_confusable=self.allow_confusable
                )
            unprobed.clear()
            return _assign_free_on_this_machine(ledger, wanted, preconfig, self.allow_confusable)

        assignments = self._file.update(change)
        if unprobed:
            # After the lock: reading the OS range and warning need not hold up other writers,
            # and a change that ran twice (see LedgerFile.update) warns once.
            _warn_if_ephemeral(unprobed[0], probing=False)
        for assignment in assignments:
            if assignment.note:
                logger.warning(assignment.note)
        if shared_ports and any(assignment.created for assignment in assignments):
            # Allocating stays safe (every port the ledger holds is avoided), and refusing would stop
            # a whole team's scaffolding over one bad merge; but the conflict must not go unnoticed.
            listed = ", ".join(map(str, shared_ports[:5])) + (", …" if len(shared_ports) > 5 else "")
            logger.warning(
                f"{self.ledger_path} has {len(shared_ports)} port{'s' if len(shared_ports) > 1 else ''} held "
                f"twice ({listed}); new allocations avoid them, but run 'portalloc check' and 'portalloc repair'"
            )
        return [assignment.allocation for assignment in assignments]

    def release_ports(self, model_name: str, app_num: int) -> bool:
        """Free the pair of ``(model_name, app_num)``; ``False`` if it had none."""
        model_name, app_num = check_key(model_name, app_num)
        if self._file.read().find(model_name, app_num) is None:
            return False  # nothing to release: no lock taken, no lock file left beside a missing ledger
        return bool(self._file.update(lambda ledger: allocator.release(ledger, model_name, app_num)))

    def release_many(self, keys: Iterable[tuple[str, int]]) -> list[PortPair]:
        """``release_ports`` for many keys under one lock and one write; returns what was released.

        Keys that hold nothing are simply not in the result. Every key is validated
        first, so one bad key releases nothing.
        """
        doomed = [check_key(model, app_num) for model, app_num in keys]
        current = self._file.read()
        if all(current.find(*key) is None for key in doomed):
            return []  # nothing to release: no lock taken, as in release_ports
        return self._file.update(lambda ledger: allocator.release_many(ledger, doomed))

    def release_model(self, model_name: str) -> list[PortPair]:
        """Release every app of ``model_name`` under one lock and one write; returns what was released."""
        check_model_name(model_name)

        def change(ledger: Ledger) -> tuple[Ledger, list[Allocation]]:
            return allocator.release_many(ledger, [a.key for a in ledger.allocations if a.model == model_name])

        if not any(a.model == model_name for a in self._file.read().allocations):
            return []  # nothing to release: no lock taken, as in release_ports
        return self._file.update(change)

    def import_allocations(self, rows: Sequence[ImportRow], *, dry_run: bool = False) -> ImportReport:
        """Add ``rows`` (read by ``portalloc.integrations.importers``) to the ledger, each keeping its own ports.

        A row whose pair ``allocator.pair_refusal`` refuses, that clashes with an earlier
        row, or whose key already holds a different pair is skipped with its reason; an
        existing allocation is never overwritten. All of it happens under one lock with
        one write; ``dry_run`` decides the same report and writes nothing.
        """

        from portalloc.integrations.importers import plan_import  # here: a plain get never pays for it

        def change(ledger: Ledger) -> tuple[Ledger, ImportReport]:
            self._check_policy(ledger)
            new_ledger, report = plan_import(ledger, rows, allow_confusable=self.allow_confusable)
            return (ledger if dry_run else new_ledger), report

        if dry_run:
            return change(self._file.read())[1]
        return self._file.update(change)

    def allocate_app_dir(self, apps_dir: str | Path, model_name: str, app_num: int) -> tuple[PortPair, Path]:
        """Create the app's directory ``<apps_dir>/<model>/app<N>``, then get or allocate its pair.

        The directory comes first, and that is what makes scaffolding safe beside
        ``cleanup``: cleanup releases an allocation only when, holding the ledger lock,
        it finds the directory missing, so there is no moment in which this app is
        allocated and has no directory. ``apps_dir`` itself must exist
        (``AppsDirMissing``). Returns the pair and the directory.
        """
        model_name, app_num = check_key(model_name, app_num)
        target = app_dir(_apps_root(apps_dir), model_name, app_num)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AppDirUnavailable(f"cannot create the app directory {target}: {error.strerror or error}") from None
        return self.get_or_allocate_ports(model_name, app_num), target

    def cleanup_orphaned_allocations(
        self, apps_dir: str | Path, model_name: str | None = None, *, dry_run: bool = False, allow_all: bool = False
    ) -> list[PortPair]:
        """Release allocations whose app directory ``<apps_dir>/<model>/app<N>`` no longer exists.

        Model names map to directories by ``portalloc.core.keys.model_dir_name``. Only
        ``model_name``'s apps are released if it is given. Returns what was (or, with
        ``dry_run``, would be) released. A directory is gone only when the OS says it
        does not exist: one that cannot be looked at (permissions, a name too long for
        the file system) keeps its allocation. Two refusals, the same with and without
        ``dry_run`` and ``model_name``: a missing ``apps_dir`` (``AppsDirMissing``), and
        an ``apps_dir`` under which no app of the ledger has a directory
        (``AppsDirLooksWrong``, a mistyped path or the wrong level) unless ``allow_all``
        says every app really is gone. The real run decides under the ledger lock, so a
        scaffolder that creates the directory before it allocates
        (``allocate_app_dir``) is never released.
        """
        root = _apps_root(apps_dir)
        wanted = check_model_name(model_name) if model_name is not None else None

        def orphans(ledger: Ledger) -> list[Allocation]:
            spelled = _nfd_model_dirs(root)
            gone = [a for a in ledger.allocations if _is_gone(_app_dir_on_disk(root, spelled, a))]
            doomed = [a for a in gone if wanted is None or a.model == wanted]
            if doomed and len(gone) == len(ledger.allocations) and not allow_all:
                raise AppsDirLooksWrong(
                    f"no app in the ledger has a directory under {root} (all {len(gone)} are missing); "
                    "check the apps directory, or say that every app is gone (--all-gone)"
                )
            return doomed

        if dry_run:
            return orphans(self._file.read())
        return self._file.update(lambda ledger: allocator.release_many(ledger, [a.key for a in orphans(ledger)]))

    # --- policy: init, policy set, reserve, pools --------------------------------------

    def create_ledger(self, policy: PortPolicy) -> Ledger:
        """Create the ledger file with ``policy`` and no allocations; ``LedgerExists`` if there is one."""
        ledger = Ledger(policy=policy)
        self._file.create(ledger)
        return ledger

    def set_policy(self, **changes: object) -> PortPolicy:
        """Change the named policy fields (``backend_start=6001``…) and return the new policy.

        Refused with ``PolicyRefused``, naming every allocation that would not fit (out
        of range, on a bad port, shared, in another model's pool), and nothing written.
        """
        return self._change_policy(lambda policy: {**policy.model_dump(), **changes})

    def reserve(self, ranges: Iterable[tuple[int, int]]) -> list[tuple[Allocation, int]]:
        """Reserve port ranges (``(low, high)``, both included) so they are never handed out.

        Allocations already on a newly reserved port stay where they are; they are
        returned (with the port) for the caller to report.
        """
        wanted = list(ranges)
        before: set[int] = set()

        def add(policy: PortPolicy) -> dict[str, object]:
            before.update(policy.reserved_ports())  # as read under the lock: what is newly reserved is ours
            return {**policy.model_dump(), "reserved": merge_ranges([*policy.reserved, *wanted])}

        self._change_policy(add)
        return [(a, port) for a, port in allocator.reserved_holders(self.ledger()) if port not in before]

    def unreserve(self, ranges: Iterable[tuple[int, int]]) -> PortPolicy:
        """Stop reserving these ports (ports that were not reserved are ignored)."""
        doomed = {port for low, high in ranges for port in range(low, high + 1)}

        def without(policy: PortPolicy) -> dict[str, object]:
            kept = sorted(policy.reserved_ports() - doomed)
            return {**policy.model_dump(), "reserved": merge_ranges((port, port) for port in kept)}

        return self._change_policy(without)

    def add_pool(self, pool: Pool) -> PortPolicy:
        """Give ``pool.model`` its own pairs; refused if they overlap a pool or another model holds one.

        A pool names a model before it has apps: a new name there passes the same door
        as a new allocation's (``names.KnownModels``).
        """
        ledger = self.ledger()
        if ledger.policy.pool_of(pool.model) is not None:
            raise PolicyRefused(f"{pool.model} already has a pool; 'portalloc pool remove {pool.model}' first")
        KnownModels(ledger, allow_confusable=self.allow_confusable).admit(pool.model)
        return self._change_policy(
            lambda policy: {
                **policy.model_dump(),
                "pools": sorted([*policy.model_dump()["pools"], pool.model_dump()], key=lambda p: p["first"]),
            }
        )

    def remove_pool(self, model_name: str) -> Pool:
        """Remove ``model_name``'s pool (its allocations stay where they are); return it."""
        pool = self.ledger().policy.pool_of(model_name)
        if pool is None:
            raise PolicyRefused(f"{model_name} has no pool")
        self._change_policy(
            lambda policy: {**policy.model_dump(), "pools": [p.model_dump() for p in policy.pools if p != pool]}
        )
        return pool

    def _change_policy(self, change: Callable[[PortPolicy], dict[str, object]]) -> PortPolicy:
        """Under the lock: build the new policy from the current one, check every allocation fits, write."""
        if read_bytes(self.ledger_path) is None:  # a policy is changed on a ledger made on purpose, never a new one
            raise self._file.missing()

        def update(ledger: Ledger) -> tuple[Ledger, PortPolicy]:
            policy = build_policy(change(ledger.policy))
            return allocator.change_policy(ledger, policy), policy

        return self._file.update(update)

    # --- this machine ----------------------------------------------------------------

    def live_status(self, model_name: str | None = None) -> list[live.PortReport]:
        """Every allocation's backend and frontend as this machine sees them now (``portalloc.machine.live``)."""
        return live.inspect(
            (a.model, a.app_num, a.backend, a.frontend)
            for a in self._file.read().allocations
            if model_name is None or a.model == model_name
        )

    # --- helpers ---------------------------------------------------------------------

    def _load_preconfig(self) -> dict[tuple[str, int], tuple[int, int]]:
        if self._preconfig is None:
            self._preconfig = load_preconfig(self.config_file) if self.config_file else {}
        return self._preconfig

    def _check_policy(self, ledger: Ledger) -> None:
        if self.policy is not None and ledger.policy != self.policy:
            raise PortallocError(
                f"{self.ledger_path} already has the policy ({ledger.policy.describe()}), "
                f"not the one asked for ({self.policy.describe()})"
            )


def _assign_free_on_this_machine(
    ledger: Ledger,
    keys: list[tuple[str, int]],
    preferred: Mapping[tuple[str, int], tuple[int, int]],
    allow_confusable: bool,
) -> tuple[Ledger, list[allocator.Assignment]]:
    """``allocator.assign_many`` with the ports this machine holds passed in as taken.

    Probing is lazy: only pairs the allocator actually proposes are bind-tested. A busy
    port joins ``taken`` and the pure allocator runs again; this ends because ``taken``
    grows every round and the policy is finite (``NoFreePair`` when nothing is left).
    Each round's answer is ``assign_many(ledger, keys, taken)``, a pure function of
    data, so the allocator never sees a socket.
    """
    # The OS keeps its reserved ports for services that bind them on purpose: skip them like held ones.
    ephemeral = _ephemeral_ports(ledger.policy) | probe.os_reserved_ports()
    busy: set[int] = set()
    tested: set[int] = set()
    while True:
        try:
            new_ledger, assignments = allocator.assign_many(
                ledger, keys, ephemeral | busy, preferred, allow_confusable=allow_confusable
            )
        except NoFreePair as error:
            if not (ephemeral or busy):
                raise
            raise NoFreePair(
                f"{error}; on this machine {len(busy)} of its ports are in use and {len(ephemeral)} lie in "
                "the OS ephemeral range or reserved by the OS, and portalloc skips them (--no-probe turns that off)"
            ) from None
        proposed = {port for a in assignments if a.created for port in a.allocation.ports} - tested
        newly_busy = {port for port in sorted(proposed) if not probe.is_free(port)}
        tested |= proposed
        if not newly_busy:
            return new_ledger, assignments
        busy |= newly_busy


def _shared_ports(ledger: Ledger) -> list[int]:
    """Ports two allocations hold (a plain git merge can make them), sorted; cheap when there are none."""
    if len(ledger.used_ports) == 2 * len(ledger.allocations):
        return []  # the common case: every port is held once, decided by a set the allocator builds anyway
    return [conflict.port for conflict in allocator.find_conflicts(ledger.allocations) if conflict.port is not None]


def _apps_root(apps_dir: str | Path) -> Path:
    root = Path(apps_dir)
    if not root.is_dir():
        raise AppsDirMissing(f"apps directory {root} does not exist or is not a directory")
    return root


def _nfd_model_dirs(root: Path) -> dict[str, str]:
    """The model directories under ``root`` whose names are not in NFC, by their NFC names (``keys.names_by_nfc``)."""
    try:
        return names_by_nfc(entry.name for entry in os.scandir(root))
    except OSError:  # unreadable: each app's own stat says what it can (an unsure one is kept)
        return {}


def _app_dir_on_disk(root: Path, spelled: Mapping[str, str], allocation: Allocation) -> Path:
    """``keys.app_dir`` of the allocation, with its model directory as spelled on disk if that is not NFC."""
    model_dir = app_dir(root, allocation.model, allocation.app_num).parent
    if model_dir.name in spelled and not model_dir.exists():
        model_dir = root / spelled[model_dir.name]
    return model_dir / f"app{allocation.app_num}"


def _is_gone(directory: Path) -> bool:
    """``True`` when the OS says ``directory`` does not exist (or is not a directory); ``False`` if unsure."""
    try:
        return not stat.S_ISDIR(os.stat(directory).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:  # EACCES, ENAMETOOLONG, EIO…: not proof that the app is gone
        return False


def _policy_span(policy: PortPolicy) -> tuple[int, int]:
    return policy.backend_start, policy.pair(policy.pair_count - 1)[1]


def _ephemeral_ports(policy: PortPolicy) -> set[int]:
    """The policy's ports that lie in the OS ephemeral range (warned about), which are never handed out."""
    overlap = _warn_if_ephemeral(policy, probing=True)
    return set(range(overlap[0], overlap[1] + 1)) if overlap else set()


def _warn_if_ephemeral(policy: PortPolicy, *, probing: bool) -> tuple[int, int] | None:
    ephemeral = probe.ephemeral_range()
    if ephemeral is None:
        return None
    low, high = _policy_span(policy)
    overlap = max(low, ephemeral[0]), min(high, ephemeral[1])
    if overlap[0] > overlap[1]:
        return None
    consequence = (
        "ports in it are never handed out"
        if probing
        else "probing is off, so ports in it may be handed out and then taken by outgoing connections"
    )
    logger.warning(
        f"the policy ({policy.describe()}) overlaps the OS ephemeral port range "
        f"{ephemeral[0]}-{ephemeral[1]} at {overlap[0]}-{overlap[1]}; {consequence}"
    )
    return overlap


def _check_lock_timeout(seconds: float) -> None:
    # NaN slips through every comparison, and a negative timeout means nothing sensible.
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise PortallocError(f"the lock timeout must be a number of seconds, 0 or more, not {seconds!r}")


def get_or_allocate_ports(
    model_name: str, app_num: int, ledger_path: str | Path | None = None, config_file: str | Path | None = None
) -> PortPair:
    """One-call form of ``PortAllocationService(ledger_path, config_file).get_or_allocate_ports``."""
    return PortAllocationService(ledger_path, config_file).get_or_allocate_ports(model_name, app_num)
