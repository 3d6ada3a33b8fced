"""The write path of one ledger: new pairs (OS-aware unless probing is off), releases and imports.

New allocations are OS-aware unless probing is off (``probe=False`` or the ledger
policy's ``probe``): under the ledger lock, between reading and writing, the pairs the
pure allocator proposes are bind-tested (``portalloc.machine.probe``) and any port the
machine holds is passed back to the allocator as taken, until every proposed pair is
free. Ports in the OS ephemeral range, and those the OS reserves (Linux
``ip_local_reserved_ports``), are taken from the start (``service.hostcapacity``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from portalloc.core import allocator
from portalloc.core.keys import check_key, check_model_name
from portalloc.core.models import Allocation, Ledger, PortPair, PortPolicy
from portalloc.errors import NoFreePair, PreconditionFailed
from portalloc.machine import probe
from portalloc.service import hostcapacity
from portalloc.service.target import LedgerTarget

if TYPE_CHECKING:
    from portalloc.integrations.importers import ImportReport, ImportRow

logger = logging.getLogger("portalloc")


class Allocations:
    """Allocate and release pairs in the ledger of ``target``, each batch under one lock and one write."""

    def __init__(self, target: LedgerTarget) -> None:
        self.target = target

    def allocate_many(self, keys: Iterable[tuple[str, int]], *, new_only: bool = False) -> list[PortPair]:
        """Each key's pair, allocating the lowest free one for a key that has none, in order.

        No keys take no lock, but a ledger that is not valid is still refused (``LedgerCorrupt``).
        ``new_only``: a key that already has a pair, as seen under the lock, refuses the
        whole batch (``PreconditionFailed``) and nothing is written.
        """
        target = self.target
        wanted = [check_key(model, app_num) for model, app_num in keys]
        if not wanted:
            target.file.read()
            return []
        preconfig = target.preconfig()

        shared_ports: list[int] = []
        unprobed: list[PortPolicy] = []

        def change(ledger: Ledger) -> tuple[Ledger, list[allocator.Assignment]]:
            target.check_policy(ledger.policy)
            if new_only:
                _refuse_existing(ledger, wanted)
            shared_ports[:] = _shared_ports(ledger)
            if not (target.probe and ledger.policy.probe):
                unprobed[:] = [ledger.policy]
                return allocator.assign_many(
                    ledger, wanted, preferred=preconfig, allow_confusable=target.allow_confusable
                )
            unprobed.clear()
            return _assign_free_on_this_machine(ledger, wanted, preconfig, target.allow_confusable)

        assignments = target.file.update(change)
        if unprobed:
            # After the lock: reading the OS range and warning need not hold up other writers,
            # and a change that ran twice (see LedgerFile.update) warns once.
            hostcapacity.warn_if_ephemeral(unprobed[0], probing=False)
        for assignment in assignments:
            if assignment.note:
                logger.warning(assignment.note)
        if shared_ports and any(assignment.created for assignment in assignments):
            # Allocating stays safe (every port the ledger holds is avoided), and refusing would stop
            # a whole team's scaffolding over one bad merge; but the conflict must not go unnoticed.
            listed = ", ".join(map(str, shared_ports[:5])) + (", …" if len(shared_ports) > 5 else "")
            logger.warning(
                f"{target.path} has {len(shared_ports)} port{'s' if len(shared_ports) > 1 else ''} held "
                f"twice ({listed}); new allocations avoid them, but run 'portalloc check' and 'portalloc repair'"
            )
        return [assignment.allocation for assignment in assignments]

    def release_many(
        self, keys: Iterable[tuple[str, int]], *, only_if: Callable[[PortPair], bool] | None = None
    ) -> list[PortPair]:
        """Release many keys under one lock and one write; returns what was released.

        Keys that hold nothing are simply not in the result. Every key is validated
        first, so one bad key releases nothing. When nothing is to be released no lock
        is taken (and no lock file left beside a missing ledger). ``only_if`` is asked
        about each key's pair as it is under the lock; when it says no, nothing is
        released (``PreconditionFailed``): a tool releases only the pair it saw.
        """
        doomed = [check_key(model, app_num) for model, app_num in keys]
        current = self.target.file.read()
        if all(current.find(*key) is None for key in doomed):
            return []

        def change(ledger: Ledger) -> tuple[Ledger, list[Allocation]]:
            for model_name, app_num in doomed:
                pair = ledger.find(model_name, app_num)
                if pair is not None and only_if is not None and not only_if(pair):
                    raise PreconditionFailed(
                        f"{model_name}/{app_num} holds {pair.backend}/{pair.frontend} now, "
                        "not the pair this release was made for; nothing was released"
                    )
            return allocator.release_many(ledger, doomed)

        return self.target.file.update(change)

    def release_model(self, model_name: str) -> list[PortPair]:
        """Release every app of ``model_name`` under one lock and one write; returns what was released."""
        check_model_name(model_name)

        def change(ledger: Ledger) -> tuple[Ledger, list[Allocation]]:
            return allocator.release_many(ledger, [a.key for a in ledger.allocations if a.model == model_name])

        if not any(a.model == model_name for a in self.target.file.read().allocations):
            return []  # nothing to release: no lock taken, as in release_many
        return self.target.file.update(change)

    def import_allocations(self, rows: Sequence[ImportRow], *, dry_run: bool = False) -> ImportReport:
        """Add ``rows`` to the ledger, each keeping its own ports (see ``PortAllocationService``)."""
        from portalloc.integrations.importers import plan_import  # here: a plain get never pays for it

        target = self.target

        def change(ledger: Ledger) -> tuple[Ledger, ImportReport]:
            target.check_policy(ledger.policy)
            new_ledger, report = plan_import(ledger, rows, allow_confusable=target.allow_confusable)
            return (ledger if dry_run else new_ledger), report

        if dry_run:
            return change(target.file.read())[1]
        return target.file.update(change)


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
    ephemeral = hostcapacity.unusable_here(ledger.policy, probing=True, warn=True)
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


def _refuse_existing(ledger: Ledger, keys: Iterable[tuple[str, int]]) -> None:
    for model_name, app_num in keys:
        found = ledger.find(model_name, app_num)
        if found is not None:
            raise PreconditionFailed(
                f"{model_name}/{app_num} already has a pair ({found.backend}/{found.frontend}); "
                "only a new key was to be allocated, so nothing was"
            )


def _shared_ports(ledger: Ledger) -> list[int]:
    """Ports two allocations hold (a plain git merge can make them), sorted; cheap when there are none."""
    if len(ledger.used_ports) == 2 * len(ledger.allocations):
        return []  # the common case: every port is held once, decided by a set the allocator builds anyway
    return [conflict.port for conflict in allocator.find_conflicts(ledger.allocations) if conflict.port is not None]
