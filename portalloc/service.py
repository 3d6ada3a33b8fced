"""``PortAllocationService``: the ledger file + the pure allocator + pre-configured ports.

This is the API the platform's scaffolding code calls. It never prints or exits;
failures are ``PortallocError`` subclasses, and a pre-configured pair that could not
be honoured is reported on the ``portalloc`` logger as a warning.

New allocations are OS-aware unless probing is off (``probe=False`` or the ledger
policy's ``probe``): under the ledger lock, between reading and writing, the pairs the
pure allocator proposes are bind-tested (``portalloc.probe``) and any port the machine
holds is passed back to the allocator as taken, until every proposed pair is free.
Ports in the OS ephemeral range are taken from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from portalloc import allocator, live, probe
from portalloc.allocator import Conflict, Usage
from portalloc.errors import LedgerUnavailable, NoFreePair, PortallocError
from portalloc.keys import app_dir, check_key
from portalloc.ledger import LedgerFile
from portalloc.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.models import Allocation, Ledger, PortPair, PortPolicy
from portalloc.paths import find_ledger
from portalloc.preconfig import load_preconfig

logger = logging.getLogger("portalloc")


class PortAllocationService:
    """Allocate, look up and release port pairs in one ledger file.

    ``ledger_path`` defaults to the ledger found from the current directory (see
    ``portalloc.paths.find_ledger``). ``config_file`` is an optional
    ``port_config.json``. ``policy`` is used when the ledger does not exist yet; an
    existing ledger keeps its own, and a different explicit one is an error on write.
    ``probe=False`` makes new allocations ignore what the OS holds (as the policy's
    ``probe: false`` does), so the ledger stays a pure function of its contents.

    The API is zero-configuration: the first write creates a missing ledger (its
    directory must exist). ``create_ledger=False`` makes that write an error instead
    (``LedgerMissing``), as the command line does away from the repository root.
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
    ) -> None:
        _check_lock_timeout(lock_timeout)
        self.ledger_path = Path(ledger_path) if ledger_path is not None else find_ledger(Path.cwd())
        self.config_file = Path(config_file) if config_file is not None else None
        self.policy = policy
        #: ``False`` turns OS probing off for this service whatever the ledger's policy says.
        self.probe = probe
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
        check_key(model_name, app_num)
        return self._file.read().find(model_name, app_num)

    def get_all_allocations(self) -> list[PortPair]:
        """Every allocation, sorted by ``(model, app_num)``."""
        return list(self._file.read().allocations)

    def check_port_conflicts(self) -> list[Conflict]:
        """Ports held more than once and keys that appear more than once (empty when clean)."""
        return allocator.find_conflicts(self._file.read().allocations)

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
        """``get_or_allocate_ports`` for many keys under one lock and one write, in order."""
        wanted = [check_key(model, app_num) for model, app_num in keys]
        preconfig = self._load_preconfig()

        def change(ledger: Ledger) -> tuple[Ledger, list[allocator.Assignment]]:
            self._check_policy(ledger)
            if not (self.probe and ledger.policy.probe):
                _warn_if_ephemeral(ledger.policy, probing=False)
                return allocator.assign_many(ledger, wanted, preferred=preconfig)
            return _assign_free_on_this_machine(ledger, wanted, preconfig)

        assignments = self._file.update(change)
        for assignment in assignments:
            if assignment.note:
                logger.warning(assignment.note)
        return [assignment.allocation for assignment in assignments]

    def release_ports(self, model_name: str, app_num: int) -> bool:
        """Free the pair of ``(model_name, app_num)``; ``False`` if it had none."""
        check_key(model_name, app_num)
        if self._file.read().find(model_name, app_num) is None:
            return False  # nothing to release: no lock taken, no lock file left beside a missing ledger
        return bool(self._file.update(lambda ledger: allocator.release(ledger, model_name, app_num)))

    def cleanup_orphaned_allocations(
        self, apps_dir: str | Path, model_name: str | None = None, *, dry_run: bool = False, allow_all: bool = False
    ) -> list[PortPair]:
        """Release allocations whose app directory ``<apps_dir>/<model>/app<N>`` no longer exists.

        Model names map to directories by ``portalloc.keys.model_dir_name``. Only
        ``model_name``'s apps are considered if it is given. Returns what was (or, with
        ``dry_run``, would be) released. A missing ``apps_dir`` is an error, not "every
        app is gone"; so is an ``apps_dir`` under which no app of the ledger has a
        directory (a mistyped path), unless ``allow_all`` says every app really is gone.
        """
        root = Path(apps_dir)
        if not root.is_dir():
            raise LedgerUnavailable(f"apps directory {root} does not exist")

        def orphans(ledger: Ledger) -> list[Allocation]:
            return [
                a
                for a in ledger.allocations
                if (model_name is None or a.model == model_name) and not app_dir(root, a.model, a.app_num).is_dir()
            ]

        if dry_run:
            return orphans(self._file.read())

        def change(ledger: Ledger) -> tuple[Ledger, list[Allocation]]:
            doomed = orphans(ledger)
            if model_name is None and doomed and len(doomed) == len(ledger.allocations) and not allow_all:
                raise PortallocError(
                    f"no app in the ledger has a directory under {root} (all {len(doomed)} would be released); "
                    "check the apps directory, or say that every app is gone (--all-gone)"
                )
            return allocator.release_many(ledger, [a.key for a in doomed])

        return self._file.update(change)

    # --- this machine ----------------------------------------------------------------

    def live_status(self, model_name: str | None = None) -> list[live.PortReport]:
        """Every allocation's backend and frontend as this machine sees them now (``portalloc.live``)."""
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
    ledger: Ledger, keys: list[tuple[str, int]], preferred: Mapping[tuple[str, int], tuple[int, int]]
) -> tuple[Ledger, list[allocator.Assignment]]:
    """``allocator.assign_many`` with the ports this machine holds passed in as taken.

    Probing is lazy: only pairs the allocator actually proposes are bind-tested. A busy
    port joins ``taken`` and the pure allocator runs again; this ends because ``taken``
    grows every round and the policy is finite (``NoFreePair`` when nothing is left).
    Each round's answer is ``assign_many(ledger, keys, taken)``, a pure function of
    data, so the allocator never sees a socket.
    """
    ephemeral = _ephemeral_ports(ledger.policy)
    busy: set[int] = set()
    tested: set[int] = set()
    while True:
        try:
            new_ledger, assignments = allocator.assign_many(ledger, keys, ephemeral | busy, preferred)
        except NoFreePair as error:
            if not (ephemeral or busy):
                raise
            raise NoFreePair(
                f"{error}; on this machine {len(busy)} of its ports are in use and {len(ephemeral)} lie in "
                "the OS ephemeral range, and portalloc skips both (--no-probe turns that off)"
            ) from None
        proposed = {port for a in assignments if a.created for port in a.allocation.ports} - tested
        newly_busy = {port for port in sorted(proposed) if not probe.is_free(port)}
        tested |= proposed
        if not newly_busy:
            return new_ledger, assignments
        busy |= newly_busy


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
