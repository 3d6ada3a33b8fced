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
from typing import TYPE_CHECKING, TypeVar, cast

from portalloc.core import allocator
from portalloc.core.keys import check_key, check_model_name
from portalloc.core.policyrules import policy_span
from portalloc.errors import NoFreePair, PortallocError, PreconditionFailed
from portalloc.machine import probe
from portalloc.service import hostcapacity
from portalloc.service.host import Plan
from portalloc.service.target import LedgerTarget

if TYPE_CHECKING:
    from portalloc.core.models import Allocation, Ledger, PortPair
    from portalloc.core.shapes import LedgerShape, PolicyShape, Row
    from portalloc.integrations.importers import ImportReport, ImportRow

logger = logging.getLogger("portalloc")

#: The ledger representation a target reads (``service.target``): the write path serves both.
L = TypeVar("L", bound="LedgerShape")


def allocate(target: LedgerTarget[L], keys: Iterable[tuple[str, int]], *, new_only: bool = False) -> list[Row]:
    """Each key's pair in the ledger of ``target``, allocating the lowest free one for a key that has none, in order.

    No keys take no lock, but a ledger that is not valid is still refused (``LedgerCorrupt``).
    ``new_only``: a key that already has a pair, as seen under the lock, refuses the
    whole batch (``PreconditionFailed``) and nothing is written. The rows are of the kind
    the target's file reads (``Allocations.allocate_many`` for the models).
    """
    wanted = [check_key(model, app_num) for model, app_num in keys]
    if not wanted:
        target.file.read()
        return []
    host = target.host
    # Before the lock: keys git dropped come back with their leased pair (asking git takes a while).
    plan = host.plan(target.file.read(), wanted) if host is not None else Plan()
    return _allocate(target, wanted, plan, new_only=new_only)


class Allocations:
    """Allocate and release pairs in the ledger of ``target``, each batch under one lock and one write."""

    def __init__(self, target: LedgerTarget[Ledger]) -> None:
        self.target = target

    def allocate_many(self, keys: Iterable[tuple[str, int]], *, new_only: bool = False) -> list[PortPair]:
        """``allocate`` in the ledger of ``target``: its rows are models."""
        return _models(allocate(self.target, keys, new_only=new_only))

    def recover(self) -> tuple[list[Allocation], dict[tuple[str, int], tuple[tuple[int, int], str]]]:
        """Put back every key of this ledger that git dropped, on its leased pair; end the leases commits released.

        Returns the keys put back and, for each key a commit released, its pair and the
        commit. Needs host leases (``LeaseStoreUnavailable`` if the store cannot be had).
        """
        host = self.target.host
        if host is None:
            raise PortallocError("host leases are off (PORTALLOC_LEASES=0 or --no-leases): nothing to recover from")
        ledger = self.target.file.read()
        plan = host.plan(ledger, host.dropped(ledger))
        restored = _models(_allocate(self.target, list(plan.restore), plan, report=False)) if plan.restore else []
        if plan.released and not plan.restore:
            host.end_released(plan)
        return restored, plan.released

    def move_off_shared_ports(self, *, dry_run: bool = False) -> list[tuple[Allocation, Allocation]]:
        """Move this ledger's side of each port another key has leased on this machine to a free pair.

        Returns ``(before, after)`` per moved key; ``dry_run`` decides the same and writes
        nothing. Needs host leases. The other ledger keeps its pair: ours is the side
        this command can change.
        """
        from portalloc.service.host_admin import shared_ports

        host = self.target.host
        if host is None:
            raise PortallocError("host leases are off (PORTALLOC_LEASES=0 or --no-leases): nothing to compare with")
        path, file, store = self.target.path, self.target.file, host.store()

        def change(ledger: Ledger) -> tuple[Ledger, list[tuple[Allocation, Allocation]]]:
            moving = sorted({allocation.key for allocation, _, _ in shared_ports(store, path, ledger)})

            def assign(taken: set[int]) -> tuple[Ledger, list[tuple[Allocation, Allocation]]]:
                kept = ledger.with_allocations(a for a in ledger.allocations if a.key not in set(moving))
                # Our own old ports stay taken too: the point is to leave them to the other ledger.
                old = {port for key in moving for port in ledger.find(*key).ports}  # type: ignore[union-attr]
                new_ledger, assignments = allocator.assign_many(kept, moving, taken | old)
                moves = [(ledger.find(*after.key), after) for after in _models([a.allocation for a in assignments])]
                return new_ledger, [(before, after) for before, after in moves if before is not None]

            if not moving:
                return ledger, []
            if dry_run:
                return ledger, assign(store.leased_ports(policy_span(ledger.policy), {}))[1]
            return host.choose(ledger, moving, Plan(), assign)

        if dry_run:
            return change(file.read())[1]
        moves = file.update(change)
        if moves:
            self.target.written()
        return moves

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

        return self.released(change)

    def released(self, change: Callable[[Ledger], tuple[Ledger, list[Allocation]]]) -> list[Allocation]:
        """``LedgerFile.update(change)`` for a ``change`` that releases; then the released keys' host leases end.

        The store is opened first, so a write that cannot end its leases writes nothing;
        the leases end after the rename (a crash in between leaks a lease, never a port).
        """
        host = self.target.host
        if host is not None:
            host.store()
        released = self.target.file.update(change)
        if host is not None and released:
            host.end(released)
        return released

    def release_model(self, model_name: str) -> list[PortPair]:
        """Release every app of ``model_name`` under one lock and one write; returns what was released."""
        check_model_name(model_name)

        def change(ledger: Ledger) -> tuple[Ledger, list[Allocation]]:
            return allocator.release_many(ledger, [a.key for a in ledger.allocations if a.model == model_name])

        if not any(a.model == model_name for a in self.target.file.read().allocations):
            return []  # nothing to release: no lock taken, as in release_many
        return self.released(change)

    def import_allocations(self, rows: Sequence[ImportRow], *, dry_run: bool = False) -> ImportReport:
        """Add ``rows`` to the ledger, each keeping its own ports (see ``PortAllocationService``)."""
        from portalloc.integrations.importers import plan_import  # here: a plain get never pays for it

        target = self.target
        planned: list[Ledger] = []

        def change(ledger: Ledger) -> tuple[Ledger, ImportReport]:
            target.check_policy(ledger.policy)
            new_ledger, report = plan_import(ledger, rows, allow_confusable=target.allow_confusable)
            planned[:] = [new_ledger]
            return (ledger if dry_run else new_ledger), report

        host = target.host
        if dry_run:
            report = change(target.file.read())[1]
        elif host is None:
            return target.file.update(change)
        else:
            # Imported rows keep their own ports; they are leased like every row written.
            report = target.file.update(lambda ledger: host.choose(ledger, (), Plan(), lambda _taken: change(ledger)))
            target.written()
        return report if host is None else _note_leased_elsewhere(report, target, planned[0])


def _allocate(
    target: LedgerTarget[L], wanted: list[tuple[str, int]], plan: Plan, *, report: bool = True, new_only: bool = False
) -> list[Row]:
    """``allocate`` once the keys are checked and the plan for keys git dropped is made.

    ``report``: warn about keys that came back or that a commit released (``recover`` says it itself).
    """
    host = target.host
    preferred = {**target.preconfig(), **plan.restore}

    shared_ports: list[int] = []
    unprobed: list[PolicyShape] = []

    def change(ledger: L) -> tuple[L, list[allocator.Assignment]]:
        target.check_policy(ledger.policy)
        if new_only:
            _refuse_existing(ledger, wanted)
        shared_ports[:] = _shared_ports(ledger)
        probing = target.probe and ledger.policy.probe
        unprobed[:] = [] if probing else [ledger.policy]

        def assign(taken: set[int]) -> tuple[L, list[allocator.Assignment]]:
            if not probing:
                return allocator.assign_many(ledger, wanted, taken, preferred, allow_confusable=target.allow_confusable)
            # A pair coming back is not bind-tested: its own app may be listening on it.
            return _assign_free_on_this_machine(
                ledger, wanted, preferred, taken, set(plan.restore.values()), target.allow_confusable
            )

        if host is None or all(ledger.find(*key) is not None for key in wanted):
            return assign(set())  # nothing to choose: a batch of existing keys is a read, and needs no store
        return host.choose(ledger, wanted, plan, assign)

    assignments = target.file.update(change)
    if host is not None and any(assignment.created for assignment in assignments):
        target.written()  # host.choose leased every row of what was written
    if report:
        _report_plan(plan, assignments)
    if unprobed:
        # After the lock: reading the OS range and warning need not hold up other writers,
        # and a change that ran twice (see LedgerFile.update) warns once.
        hostcapacity.warn_if_ephemeral(unprobed[0], probing=False)
    for assignment in assignments:
        if assignment.note and assignment.allocation.key not in plan.restore:  # those: _report_plan
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


def _assign_free_on_this_machine(
    ledger: L,
    keys: list[tuple[str, int]],
    preferred: Mapping[tuple[str, int], tuple[int, int]],
    leased: set[int],
    coming_back: set[tuple[int, int]],
    allow_confusable: bool,
) -> tuple[L, list[allocator.Assignment]]:
    """``allocator.assign_many`` with the ports this machine holds passed in as taken.

    Probing is lazy: only pairs the allocator actually proposes are bind-tested. A busy
    port joins ``taken`` and the pure allocator runs again; this ends because ``taken``
    grows every round and the policy is finite (``NoFreePair`` when nothing is left).
    Each round's answer is ``assign_many(ledger, keys, taken)``, a pure function of
    data, so the allocator never sees a socket. ``leased`` ports (host leases of other
    keys) are taken from the start; pairs ``coming_back`` to their key are not tested.
    """
    # The OS keeps its reserved ports for services that bind them on purpose: skip them like held ones.
    ephemeral = hostcapacity.unusable_here(ledger.policy, probing=True, warn=True)
    busy: set[int] = set()
    tested: set[int] = {port for pair in coming_back for port in pair}
    while True:
        try:
            new_ledger, assignments = allocator.assign_many(
                ledger, keys, ephemeral | busy | leased, preferred, allow_confusable=allow_confusable
            )
        except NoFreePair as error:
            if not (ephemeral or busy):
                raise  # (ports leased here are named by the error's caller, service.allocation)
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


def _refuse_existing(ledger: LedgerShape, keys: Iterable[tuple[str, int]]) -> None:
    for model_name, app_num in keys:
        found = ledger.find(model_name, app_num)
        if found is not None:
            raise PreconditionFailed(
                f"{model_name}/{app_num} already has a pair ({found.backend}/{found.frontend}); "
                "only a new key was to be allocated, so nothing was"
            )


def _shared_ports(ledger: LedgerShape) -> list[int]:
    """Ports two allocations hold (a plain git merge can make them), sorted; cheap when there are none."""
    if len(ledger.used_ports) == 2 * len(ledger.allocations):
        return []  # the common case: every port is held once, decided by a set the allocator builds anyway
    from portalloc.core import audit  # its report models import pydantic: only for a ledger with conflicts

    return [conflict.port for conflict in audit.find_conflicts(ledger.allocations) if conflict.port is not None]


def _report_plan(plan: Plan, assignments: list[allocator.Assignment]) -> None:
    """Say which keys came back with their leased pair, and which a commit had released."""
    for assignment in assignments:
        allocation = assignment.allocation
        if not assignment.created:
            continue
        if allocation.key in plan.released:
            (backend, frontend), commit = plan.released[allocation.key]
            logger.warning(
                f"{allocation.label()}'s pair {backend}/{frontend} was released by commit {commit}; "
                f"it gets a new pair, {allocation.backend}/{allocation.frontend}"
            )
        elif allocation.key in plan.restore:
            backend, frontend = plan.restore[allocation.key]
            if (allocation.backend, allocation.frontend) == (backend, frontend):
                logger.warning(
                    f"{allocation.label()} was missing from the ledger (git dropped it, no commit released it); "
                    f"it is back on its leased pair {backend}/{frontend}"
                )
            else:
                logger.warning(
                    f"{allocation.label()} was missing from the ledger, and its leased pair {backend}/{frontend} "
                    f"is no longer free here; it gets {allocation.backend}/{allocation.frontend}"
                )


def _models(rows: list[Row]) -> list[Allocation]:
    """The rows of a ``Ledger``: ``Allocation``s (``Ledger.new_row``), which the write path types by their shape."""
    return cast("list[Allocation]", rows)


def _note_leased_elsewhere(report: ImportReport, target: LedgerTarget[Ledger], ledger: Ledger) -> ImportReport:
    """``report`` with a note on each row whose ports another key leases on this machine (kept, never dropped:
    the other ledger may be a stale clone, and dropping a live pair would hand its port out twice)."""
    from portalloc.integrations.importers import LEASED_HERE
    from portalloc.service import status

    notes: dict[tuple[str, int], list[str]] = {}
    for allocation, _port, message in status.shared_here(target, ledger=ledger):
        notes.setdefault(allocation.key, []).append(message)
    return report.with_notes({key: "; ".join(messages) for key, messages in notes.items()}, LEASED_HERE)
