"""A linked worktree's own pairs under the policy's ``worktrees: separate``: chosen here, leased here, never committed.

Several linked worktrees of one repository (``git worktree add``) run the same apps at
once, and each copy of the ledger says the same thing. With ``worktrees: separate`` the
main worktree uses the ledger's pairs and every linked worktree a pair of its own per
key, which only this machine knows (the host lease store's ``worktree_leases``):

- chosen on the first ``get``/``env``/``run``/``dotenv`` (``own_pairs``), from the same
  policy (ranges, pools, reserved and bad ports), but searched from the top of the range
  down (``allocator.free_pairs``), away from the pairs the team's next allocations take;
- avoiding every port of the ledger, every live lease and worktree lease on this
  machine (a store transaction makes "choose and lease" one step), and, when probing,
  every port something holds now; committed allocations avoid them in turn
  (``LeaseStore.leased_ports`` counts them);
- stable for the life of the worktree: kept until a row pulled into the ledger, or
  another lease, lands on one of its ports, and then moved, with a warning (at the next
  ``get``/``env``/``run``/``dotenv``, or ``host sync``: ``recheck``);
- read (never chosen) by ``held``/``in_use`` for ``list``, ``status`` and the like;
- ended with its key's release in the worktree, or by ``host prune`` when git no longer
  lists the worktree (``service.host_admin``).

Nothing here runs with host leases off, under ``worktrees: shared`` or outside a linked worktree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from portalloc.core import allocator
from portalloc.core.keys import check_key
from portalloc.core.policyrules import policy_span
from portalloc.errors import LeaseStoreUnavailable
from portalloc.machine import probe
from portalloc.service import hostcapacity
from portalloc.service.allocation import allocate
from portalloc.service.target import LedgerTarget

if TYPE_CHECKING:
    from portalloc.core.models import Allocation, Ledger
    from portalloc.core.shapes import LedgerShape, Row
    from portalloc.core.worktreepair import WorktreePair

logger = logging.getLogger("portalloc")

Key = tuple[str, int]
#: Rows of either representation (``core.shapes``); a linked worktree's own pair is a ``WorktreePair``.
R = TypeVar("R", bound="Row")
L = TypeVar("L", bound="LedgerShape")


def pair_in_use(target: LedgerTarget[L], model: str, app_num: int) -> tuple[Row, Path | None]:
    """The pair this work tree uses for ``(model, app_num)``, allocated if new, and the linked worktree whose
    own pair it is (``None``: the ledger's). ``PortAllocationService.get_or_allocate_ports``, for either
    representation: the command line's write of a new key reads plain classes."""
    key = check_key(model, app_num)
    existing = target.file.read().find(*key)
    # A new key is a write, which leases every row of the ledger itself. For a key the ledger holds, a read:
    # rows that arrived without a write are leased now (service.readsync), and no ledger lock is taken.
    committed = allocate(target, [key]) if existing is None else [existing]
    ledger = target.read()
    own = WorktreePairs(target)
    return own.own_pairs(ledger, committed)[0], own.worktree(ledger)


class WorktreePairs:
    """The own pairs of the linked worktree that holds the ledger of ``target`` (if it is one)."""

    def __init__(self, target: LedgerTarget[Any]) -> None:  # either representation: it reads no ledger itself
        self.target = target

    def worktree(self, ledger: LedgerShape) -> Path | None:
        """The linked worktree whose pairs are its own, or ``None`` (main worktree, ``shared``, leases off)."""
        host = self.target.host
        if host is None or not ledger.policy.separate_worktrees:
            return None
        return host.identity().worktree

    def held(self, ledger: Ledger) -> dict[Key, WorktreePair]:
        """This worktree's own pairs, by key (none outside a separate linked worktree); never chooses one.

        A read never fails because of the store: without it, there are no own pairs to show.
        """
        worktree = self.worktree(ledger)
        host = self.target.host
        if worktree is None or host is None:
            return {}
        try:
            store = host.store()
            ledger_id = store.known_ledger_id(host.identity().key)
            leases = [] if ledger_id is None else store.worktrees.leases(ledger_id, worktree)
        except LeaseStoreUnavailable as error:
            logger.warning(f"{error}; showing the ledger's pairs")
            return {}
        return {lease.key: _pair(lease.key, lease.ports, worktree) for lease in leases}

    def in_use(self, ledger: Ledger) -> list[Allocation]:
        """The ledger's rows as this worktree uses them: its own pair where it has one, else the ledger's."""
        own = self.held(ledger)
        return [own.get(row.key, row) for row in ledger.allocations]

    def own_pairs(self, ledger: LedgerShape, committed: Sequence[R]) -> list[R | WorktreePair]:
        """``committed`` (pairs the ledger holds) as this worktree uses them: each replaced by its own pair,
        chosen and leased now if it has none or if its pair is no longer free of the ledger and other leases."""
        worktree = self.worktree(ledger)
        host = self.target.host
        if host is None and committed and ledger.policy.separate_worktrees:
            _warn_without_leases(self.target.path)
        if worktree is None or host is None or not committed:
            return list(committed)  # the ledger's pairs: no WorktreePair (nor pydantic) needed
        keys = list(dict.fromkeys(pair.key for pair in committed))
        store = host.store()
        with store.transaction():
            ledger_id = host.register(store)
            taken = store.leased_ports(policy_span(ledger.policy), {}, worktree=(ledger_id, worktree, keys))
            taken |= ledger.used_ports
            held = {key: store.worktrees.pair(ledger_id, worktree, key) for key in keys}
            kept = {key: pair for key, pair in held.items() if pair is not None and not taken & set(pair)}
            chosen = self._choose(ledger, [key for key in keys if key not in kept], taken | _ports(kept.values()))
            for key, pair in chosen.items():
                store.worktrees.lease(ledger_id, worktree, key, pair)
        for key, pair in chosen.items():
            before = held[key]
            if before is not None:
                logger.warning(
                    f"{key[0]}/{key[1]} in worktree {worktree} moved from {before[0]}/{before[1]} to "
                    f"{pair[0]}/{pair[1]}: the ledger or another lease on this machine holds its old pair now"
                )
        pairs = {**kept, **chosen}
        return [_pair(pair.key, pairs[pair.key], worktree) for pair in committed]

    def recheck(self, ledger: Ledger) -> list[Allocation]:
        """Move each own pair that a row the ledger gained (a pull, a merge) or another lease now holds;
        what ``host sync`` runs after git changed the work tree. Returns this worktree's pairs."""
        rows = [row for row in ledger.allocations if row.key in self.held(ledger)]
        return self.own_pairs(ledger, rows)

    def end(self, ledger: Ledger, released: Sequence[Allocation]) -> None:
        """After a release in this worktree: its own pairs of the ``released`` keys end too."""
        worktree = self.worktree(ledger)
        host = self.target.host
        if worktree is None or host is None or not released:
            return
        store = host.store()
        with store.transaction():
            store.worktrees.end(host.register(store), worktree, [pair.key for pair in released])

    def _choose(self, ledger: LedgerShape, keys: list[Key], taken: set[int]) -> dict[Key, tuple[int, int]]:
        """A new pair per key, from the top of the policy down, clear of ``taken`` and, when probing, of
        what this machine holds (only the pairs proposed are bind-tested, as for committed pairs)."""
        if not keys:
            return {}
        policy = ledger.policy
        probing = self.target.probe and policy.probe
        if probing:
            taken = taken | hostcapacity.unusable_here(policy, probing=True)
        models = [model for model, _ in keys]
        while True:
            pairs = allocator.free_pairs(ledger, models, taken, highest_first=True)
            busy = {port for pair in pairs for port in pair if probing and not probe.is_free(port)}
            if not busy:
                return dict(zip(keys, pairs, strict=True))
            taken = taken | busy  # grows every round, and the policy is finite: NoFreePair ends it


def _warn_without_leases(ledger_path: Path) -> None:
    """Say so when a linked worktree uses the ledger's pairs only because host leases are off."""
    from portalloc.machine.identity import identify

    worktree = identify(ledger_path).worktree
    if worktree is not None:
        logger.warning(
            f"worktree {worktree} uses the ledger's pairs: its own pairs (worktrees: separate) need host leases, "
            "which are off (PORTALLOC_LEASES=0 or --no-leases)"
        )


def _pair(key: Key, ports: tuple[int, int], worktree: Path) -> WorktreePair:
    from portalloc.core.worktreepair import WorktreePair  # a model: only a separate linked worktree needs it

    return WorktreePair.model_construct(
        model=key[0], app_num=key[1], backend=ports[0], frontend=ports[1], worktree=str(worktree)
    )


def _ports(pairs: Iterable[tuple[int, int]]) -> set[int]:
    return {port for pair in pairs for port in pair}
