"""``PortAllocationService``: the one API over a ledger, a thin facade over the service's concerns.

This is the API the platform's scaffolding code calls. It never prints or exits;
failures are ``PortallocError`` subclasses, and a pre-configured pair that could not
be honoured is reported on the ``portalloc`` logger as a warning.

The work is split by concern, one module each: lookups stay here (one line each),
new pairs and releases are ``service.allocation`` (OS-aware, see there), app
directories ``service.cleanup``, the policy ``service.policy_admin`` and what the
machine sees ``service.status``. All of them share one ``LedgerTarget``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from portalloc.core import audit, policyrules
from portalloc.core.audit import Conflict, Usage
from portalloc.core.keys import check_key
from portalloc.core.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.core.models import Allocation, Ledger, Pool, PortPair, PortPolicy
from portalloc.machine import live
from portalloc.service import hostcapacity, status
from portalloc.service.allocation import Allocations
from portalloc.service.cleanup import AppDirectories
from portalloc.service.host import HostLeases, leases_enabled
from portalloc.service.policy_admin import PolicyAdmin
from portalloc.service.target import LedgerTarget, check_lock_timeout
from portalloc.service.worktrees import WorktreePairs, pair_in_use
from portalloc.storage.ledger import LedgerFile
from portalloc.storage.paths import find_ledger

if TYPE_CHECKING:
    from portalloc.integrations.importers import ImportReport, ImportRow


class PortAllocationService:
    """Allocate, look up and release port pairs in one ledger file.

    ``ledger_path`` defaults to the ledger found from the current directory (see
    ``portalloc.storage.paths.find_ledger``). ``config_file`` is an optional
    ``port_config.json``. ``policy`` is used when the ledger does not exist yet; an
    existing ledger keeps its own, and a different explicit one is an error on write.
    ``probe=False`` makes new allocations ignore what the OS holds (as the policy's
    ``probe: false`` does), so the ledger stays a pure function of its contents.
    ``leases`` turns this machine's host leases on or off (``None``: on unless
    ``PORTALLOC_LEASES=0``); see ``portalloc.service.host``. ``state_dir`` is where
    their store lives (default: ``PORTALLOC_STATE_DIR``, ``$XDG_STATE_HOME/portalloc``,
    ``~/.local/state/portalloc``).

    The API is zero-configuration: the first write creates a missing ledger (its
    directory must exist). ``create_ledger=False`` makes that write an error instead
    (``LedgerMissing``), as the command line does away from the repository root.
    Once the ledger has been seen, a write never creates it again (see ``LedgerFile``).
    A new model that looks the same as one the ledger has (``model_а`` with a Cyrillic
    a beside ``model_a``) is refused (``ConfusableName``) unless ``allow_confusable``.
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
        leases: bool | None = None,
        state_dir: str | Path | None = None,
        allow_confusable: bool = False,
    ) -> None:
        check_lock_timeout(lock_timeout)
        path = Path(ledger_path) if ledger_path is not None else find_ledger(Path.cwd())
        file = LedgerFile(path, lock_timeout, Ledger(policy=policy) if policy else None, create_missing=create_ledger)
        on = leases_enabled() if leases is None else leases
        host = HostLeases(path, state_dir=Path(state_dir) if state_dir is not None else None) if on else None
        config = Path(config_file) if config_file is not None else None
        self._target = LedgerTarget(path, file, config, policy, probe, host, allow_confusable)
        self._allocations = Allocations(self._target)
        self._app_dirs = AppDirectories(self._allocations)
        self._policy_admin = PolicyAdmin(self._target)
        self._worktrees = WorktreePairs(self._target)

    @property
    def ledger_path(self) -> Path:
        """The ledger file this service works on."""
        return self._target.path

    @property
    def config_file(self) -> Path | None:
        """The pre-configuration file (``port_config.json``), if any."""
        return self._target.config_file

    @property
    def policy(self) -> PortPolicy | None:
        """The policy asked for (``None``: whatever the ledger has)."""
        return self._target.policy

    @property
    def probe(self) -> bool:
        """``False`` turns OS probing off for this service whatever the ledger's policy says."""
        return self._target.probe

    @property
    def allow_confusable(self) -> bool:
        """``True`` lets a new model that looks like an existing one in (``portalloc.core.names``)."""
        return self._target.allow_confusable

    # --- reading ---------------------------------------------------------------------

    def ledger(self) -> Ledger:
        """The ledger as it is now (lock-free; re-parsed only when the file changed).

        With host leases on, a ledger that changed since this machine last leased its rows
        (a ``git pull`` without the hooks) has them leased now, best effort (``service.readsync``).
        """
        return self._target.read()

    def get_ports(self, model_name: str, app_num: int) -> PortPair | None:
        """The pair of ``(model_name, app_num)`` if it has one; never allocates.

        In a linked worktree under ``worktrees: separate`` that is the worktree's own pair
        (a ``WorktreePair``), and ``None`` until the worktree has one (or while a row the
        ledger gained holds one of its ports: ``get_or_allocate_ports`` moves it).
        """
        ledger = self.ledger()
        found = ledger.find(*check_key(model_name, app_num))
        if found is None or self._worktrees.worktree(ledger) is None:
            return found
        own = self._worktrees.held(ledger).get(found.key)
        # One the ledger now holds too (a pulled row landed on it) is not answered: a write moves it.
        return None if own is None or ledger.used_ports & set(own.ports) else own

    def get_all_allocations(self) -> list[PortPair]:
        """Every allocation of the ledger (the committed pairs), sorted by ``(model, app_num)``."""
        return list(self.ledger().allocations)

    def pairs_in_use(self) -> list[PortPair]:
        """Every allocation as this work tree uses it, sorted by ``(model, app_num)``: in a linked worktree
        under ``worktrees: separate``, the worktree's own pair (``WorktreePair``) where it has one."""
        return self._worktrees.in_use(self.ledger())

    def worktree_pairs(self) -> list[PortPair]:
        """The pairs of its own this linked worktree holds (``worktrees: separate``; none elsewhere); never chooses."""
        return list(self._worktrees.held(self.ledger()).values())

    def recheck_worktree_pairs(self) -> list[PortPair]:
        """Move each of this linked worktree's own pairs that the ledger (after a pull) or another lease now
        holds, with a warning; its pairs after that (none outside a separate linked worktree)."""
        return self._worktrees.recheck(self.ledger())

    def worktree(self) -> Path | None:
        """The linked worktree whose pairs are its own (``worktrees: separate``), or ``None``."""
        return self._worktrees.worktree(self.ledger())

    def check_port_conflicts(self) -> list[Conflict]:
        """Ports held more than once and keys that appear more than once (empty when clean)."""
        return audit.find_conflicts(self.ledger().allocations)

    def policy_warnings(self) -> list[str]:
        """Apps outside their model's pool and apps on a reserved port: they stay, and are reported."""
        return policyrules.policy_warnings(self.ledger())

    def stats(self) -> Usage:
        """Counts of allocations, models, capacity and free pairs: in the policy, and usable on this machine."""
        ledger = self.ledger()
        return audit.usage(ledger, self.unusable_here(ledger.policy))

    def unusable_here(self, policy: PortPolicy | None = None) -> frozenset[int]:
        """The ports of ``policy`` (default: the ledger's) that new allocations on this machine skip.

        The OS ephemeral range and the ports the OS reserves, unless probing is off (then
        allocation ignores the OS), and, with host leases on, the ports other keys lease
        here (``service.hostcapacity``). What ``stats``, ``policy`` and the metrics count
        as not usable here.
        """
        ledger = self.ledger()
        policy = policy or ledger.policy
        return hostcapacity.unusable_here(
            policy,
            probing=self.probe and policy.probe,
            host=self._target.host,
            held=[allocation.key for allocation in ledger.allocations],
        )

    # --- writing (service.allocation) ---------------------------------------------------

    def get_or_allocate_ports(self, model_name: str, app_num: int) -> PortPair:
        """The pair of ``(model_name, app_num)``, allocating the lowest free one if it has none.

        In a linked worktree under ``worktrees: separate``: the worktree's own pair
        (``WorktreePair``), chosen if new; a new key gets its ledger pair too.
        """
        pair, _worktree = pair_in_use(self._target, model_name, app_num)
        return cast("PortPair", pair)  # the service's file reads models (LedgerTarget[Ledger]): its rows are PortPairs

    def allocate_many(self, keys: Iterable[tuple[str, int]], *, new_only: bool = False) -> list[PortPair]:
        """``get_or_allocate_ports`` for many keys under one lock and one write, in order.

        No keys take no lock, but a ledger that is not valid is still refused (``LedgerCorrupt``).
        ``new_only``: refuse (``PreconditionFailed``) if a key already has a pair under the lock.
        In a linked worktree under ``worktrees: separate``, each pair is the worktree's own.
        """
        committed = self._allocations.allocate_many(keys, new_only=new_only)
        return self._worktrees.own_pairs(self.ledger(), committed)

    def release_ports(
        self, model_name: str, app_num: int, *, only_if: Callable[[PortPair], bool] | None = None
    ) -> bool:
        """Free the pair of ``(model_name, app_num)``; ``False`` if it had none.

        ``only_if``, asked about the pair under the lock, may refuse the release (``PreconditionFailed``).
        """
        return bool(self._ended(self._allocations.release_many([(model_name, app_num)], only_if=only_if)))

    def release_many(self, keys: Iterable[tuple[str, int]]) -> list[PortPair]:
        """``release_ports`` for many keys under one lock and one write; returns what was released.

        Keys that hold nothing are simply not in the result. Every key is validated
        first, so one bad key releases nothing.
        """
        return self._ended(self._allocations.release_many(keys))

    def release_model(self, model_name: str) -> list[PortPair]:
        """Release every app of ``model_name`` under one lock and one write; returns what was released."""
        return self._ended(self._allocations.release_model(model_name))

    def _ended(self, released: list[PortPair]) -> list[PortPair]:
        """``released``, once a linked worktree's own pairs of those keys have ended too (``worktrees: separate``)."""
        if released:
            self._worktrees.end(self.ledger(), released)
        return released

    def import_allocations(self, rows: Sequence[ImportRow], *, dry_run: bool = False) -> ImportReport:
        """Add ``rows`` (read by ``portalloc.integrations.importers``) to the ledger, each keeping its own ports.

        A row whose pair ``allocator.pair_refusal`` refuses, that clashes with an earlier
        row, or whose key already holds a different pair is skipped with its reason; an
        existing allocation is never overwritten. All of it happens under one lock with
        one write; ``dry_run`` decides the same report and writes nothing.
        """
        return self._allocations.import_allocations(rows, dry_run=dry_run)

    def recover(self) -> tuple[list[PortPair], dict[tuple[str, int], tuple[tuple[int, int], str]]]:
        """Put back every key git dropped from this ledger (stash, checkout, reset) on its host-leased pair.

        Returns the keys put back and, for each key a commit released (whose lease now
        ends instead), its pair and the commit (``abc1234 subject``). Needs host leases.
        """
        return self._allocations.recover()

    def move_off_shared_ports(self, *, dry_run: bool = False) -> list[tuple[PortPair, PortPair]]:
        """Move this ledger's side of each port another ledger's key has leased on this machine to a free pair.

        Returns ``(before, after)`` per moved key (``dry_run``: what would move). Needs host leases.
        """
        return self._allocations.move_off_shared_ports(dry_run=dry_run)

    # --- app directories (service.cleanup) ---------------------------------------------

    def allocate_app_dir(self, apps_dir: str | Path, model_name: str, app_num: int) -> tuple[PortPair, Path]:
        """Create the app's directory ``<apps_dir>/<model>/app<N>``, then get or allocate its pair.

        The directory comes first, and that is what makes scaffolding safe beside
        ``cleanup``: cleanup releases an allocation only when, holding the ledger lock,
        it finds the directory missing, so there is no moment in which this app is
        allocated and has no directory. ``apps_dir`` itself must exist
        (``AppsDirMissing``). Returns the pair and the directory.
        """
        return self._app_dirs.allocate_app_dir(apps_dir, model_name, app_num)

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
        orphans = self._app_dirs.cleanup_orphaned_allocations(
            apps_dir, model_name, dry_run=dry_run, allow_all=allow_all
        )
        return orphans if dry_run else self._ended(orphans)

    # --- policy: init, policy set, reserve, pools (service.policy_admin) ----------------

    def create_ledger(self, policy: PortPolicy) -> Ledger:
        """Create the ledger file with ``policy`` and no allocations; ``LedgerExists`` if there is one."""
        return self._policy_admin.create_ledger(policy)

    def set_policy(self, *, force: bool = False, **changes: object) -> PortPolicy:
        """Change the named policy fields (``backend_start=6001``…) and return the new policy.

        Refused with ``PolicyRefused``, naming every allocation that would not fit (out
        of range, on a bad port, shared, in another model's pool), and nothing written.
        A change that fits but would move a pool, or put an app outside its pool or off
        the sequence, is refused the same way unless ``force``; then each move is a
        warning on the ``portalloc`` logger.
        """
        return self._policy_admin.set_policy(changes, force=force)

    def reserve(self, ranges: Iterable[tuple[int, int]]) -> list[tuple[Allocation, int]]:
        """Reserve port ranges (``(low, high)``, both included) so they are never handed out.

        Allocations already on a newly reserved port stay where they are; they are
        returned (with the port) for the caller to report.
        """
        return self._policy_admin.reserve(ranges)

    def unreserve(self, ranges: Iterable[tuple[int, int]]) -> PortPolicy:
        """Stop reserving these ports (ports that were not reserved are ignored)."""
        return self._policy_admin.unreserve(ranges)

    def add_pool(self, pool: Pool) -> PortPolicy:
        """Give ``pool.model`` its own pairs; refused if they overlap a pool or another model holds one."""
        return self._policy_admin.add_pool(pool)

    def remove_pool(self, model_name: str) -> Pool:
        """Remove ``model_name``'s pool (its allocations stay where they are); return it."""
        return self._policy_admin.remove_pool(model_name)

    # --- this machine (service.status) -------------------------------------------------

    def live_status(self, model_name: str | None = None) -> list[live.PairReport]:
        """Every allocation (or ``model_name``'s) and its two ports as this machine sees them (``machine.live``):
        the pairs this work tree uses (a linked worktree's own ones under ``worktrees: separate``)."""
        return status.live_status(self.pairs_in_use(), model_name)

    def shared_here(self, model_name: str | None = None) -> list[tuple[Allocation, int, str]]:
        """``(allocation, port, message)`` for each port of the ledger (or ``model_name``'s) that another key
        has leased on this machine (host leases); empty with leases off, a warning if the store cannot be read."""
        return status.shared_here(self._target, model_name)


def get_or_allocate_ports(
    model_name: str, app_num: int, ledger_path: str | Path | None = None, config_file: str | Path | None = None
) -> PortPair:
    """One-call form of ``PortAllocationService(ledger_path, config_file).get_or_allocate_ports``."""
    return PortAllocationService(ledger_path, config_file).get_or_allocate_ports(model_name, app_num)
