"""Seeing and mending this machine's host leases: list, sync, prune, and the ports two ledgers both claim.

The faces (``portalloc host …``, ``check --host``) call these; each takes an open
``LeaseStore`` (``portalloc.machine.leases.open_store``) and returns data.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

from portalloc.core.limits import MAX_PORT
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.errors import GitError, PortallocError
from portalloc.machine import syncstamp
from portalloc.machine.leases import Instance, Lease, LeaseStore
from portalloc.machine.leaseview import ledger_labels
from portalloc.machine.worktreeleases import WorktreeLease
from portalloc.service.host import HostLeases
from portalloc.storage.codec import key_text
from portalloc.storage.ledger import LedgerFile
from portalloc.storage.ledgerdir import read_bytes


@dataclass(frozen=True)
class Pruned:
    """A lease ``prune`` ended (or, dry, would end), and why."""

    lease: Lease
    why: str


@dataclass(frozen=True)
class PrunedWorktree:
    """A linked worktree whose own pairs ``prune`` ended (or, dry, would end), and why."""

    worktree: Path
    leases: tuple[WorktreeLease, ...]
    why: str


def clashes_of(store: LeaseStore, ledger_path: Path, ledger: Ledger) -> list[tuple[Allocation, int, Lease]]:
    """Each port of ``ledger`` (the file at ``ledger_path``) that a live lease of another key claims here.

    ``(allocation, port, other lease)``: another ledger's key, or a key of this ledger
    that git dropped from this copy (its pair is still leased to it). Two keys this copy
    holds on one port are a conflict in the ledger itself (``check``, ``repair``), not here.
    """
    identity = HostLeases(ledger_path, store).identity()
    found = []
    for allocation in ledger.allocations:
        for port in allocation.ports:
            for lease in store.leases(port=port):
                mine = lease.identity == identity.key
                if not (mine and (lease.key == allocation.key or ledger.find(*lease.key) is not None)):
                    found.append((allocation, port, lease))
    return found


def shared_ports(store: LeaseStore, ledger_path: Path, ledger: Ledger) -> list[tuple[Allocation, int, str]]:
    """``(allocation, port, message)`` for each port of the ledger that a live lease of another key claims here."""
    labels = ledger_labels(store)
    return [
        (
            allocation,
            port,
            f"port {port} of {allocation.label()} is also leased to {lease.model}/{lease.app_num} of "
            f"{labels.get(lease.identity, lease.identity)}",
        )
        for allocation, port, lease in clashes_of(store, ledger_path, ledger)
    ]


def sync(store: LeaseStore, ledger_path: Path) -> tuple[int, list[tuple[str, int]]]:
    """Lease every row of the ledger at ``ledger_path``, and end the leases of its keys a commit released.

    Returns how many leases were added or moved, and the keys whose lease ended. What
    git brought (a checkout, a merge, a pull) is leased from then on; a key git dropped
    without a commit keeps its lease (``host recover`` puts it back).
    """
    host = HostLeases(ledger_path, store)
    seen = syncstamp.signature(ledger_path)  # before the read: a change after it is taken in by the next read
    ledger = LedgerFile(ledger_path, create_missing=False).read()
    changed = host.sync(ledger)
    if seen is not None:
        syncstamp.record(store.path.parent, ledger_path, seen)  # reads need not sync it again (service.readsync)
    plan = host.plan(ledger, host.dropped(ledger))
    if plan.released:
        host.end_released(plan)
    return changed, list(plan.released)


def prune(store: LeaseStore, *, dry_run: bool) -> list[Pruned]:
    """End the leases nothing holds any more; returns each with why (``dry_run``: ends none).

    A ledger none of whose copies exists (the clone was removed, ``git worktree
    remove``) loses all its leases; in a repository that still exists, a key that no
    branch, remote-tracking branch, tag, stash entry, worktree file or index holds loses
    its lease; outside git, a key its file no longer holds. A repository git cannot
    read is left alone.
    """
    pruned: list[Pruned] = []
    for instance in store.instances():
        leases = store.leases(instance.ledger_id)
        present = instance.present()
        if not present:
            pruned += [Pruned(lease, "its work tree is gone") for lease in leases]
        else:
            held = _held_text(instance, present)
            if held is not None:
                why = _nothing_holds(instance)
                pruned += [Pruned(lease, why) for lease in leases if key_text(*lease.key) not in held]
    if not dry_run:
        with store.transaction():
            for item in pruned:
                store.release(item.lease.ledger_id, [item.lease.key], f"pruned: {item.why}")
            for instance in store.instances():
                for path in instance.checkouts:
                    if not path.parent.is_dir():
                        store.forget_checkout(instance.ledger_id, path)
    return pruned


def prune_worktrees(store: LeaseStore, *, dry_run: bool) -> list[PrunedWorktree]:
    """End the own pairs (``worktrees: separate``) of every linked worktree git no longer counts: not in
    ``git worktree list``, or marked prunable and not locked. A repository git cannot read is left alone."""
    from portalloc.integrations.leasegit import live_worktrees

    grouped: dict[tuple[int, Path], list[WorktreeLease]] = {}
    for lease in store.worktrees.leases():
        grouped.setdefault((lease.ledger_id, lease.worktree), []).append(lease)
    copies = {instance.ledger_id: instance.present() for instance in store.instances()}
    listed: dict[int, set[Path] | None] = {}
    pruned: list[PrunedWorktree] = []
    for (ledger_id, worktree), leases in grouped.items():
        present = copies.get(ledger_id, ())
        if ledger_id not in listed:
            # Any copy of the ledger that still exists can ask git for the repository's worktrees.
            try:
                listed[ledger_id] = live_worktrees(present[0].parent) if present else set()
            except (GitError, PortallocError):
                listed[ledger_id] = None
        live = listed[ledger_id]
        if live is not None and worktree not in live:
            pruned.append(PrunedWorktree(worktree, tuple(leases), "git no longer counts its worktree"))
    if not dry_run and pruned:
        with store.transaction():
            for item in pruned:
                store.worktrees.end(item.leases[0].ledger_id, item.worktree)
    return pruned


def _nothing_holds(instance: Instance) -> str:
    return "nothing in its repository holds it" if instance.repository else "its ledger no longer holds it"


def _held_text(instance: Instance, present: tuple[Path, ...]) -> str | None:
    """Everything that still holds keys of ``instance``, as text; ``None`` if it cannot be known."""
    if instance.repository is None or instance.relative is None:
        try:
            found = [read_bytes(path) for path in present]
        except PortallocError:  # unreadable, or no longer a regular file: what it holds cannot be known
            return None
        return "\n".join(data.decode("utf-8", "replace") for data in found if data is not None)
    from portalloc.integrations.leasegit import held_texts

    identity = HostLeases(present[0]).identity()  # the store is not needed for that
    if identity.top is None:
        return None
    try:
        return held_texts(identity.top, instance.relative, present)
    except (GitError, PortallocError):
        return None


#: How far ``free_start`` moves a policy at a time, and how many of its first pairs must be free.
OFFER_STEP, OFFER_PAIRS = 1000, 100


def free_start(store: LeaseStore, policy: PortPolicy, repository: str | None) -> tuple[int, int] | None:
    """``(backend_start, frontend_start)`` moved up by a multiple of 1,000 until the first 100 pairs are leased
    by no other repository here; ``None`` when the policy's own first pairs are free (or no such range fits).

    Ledgers of ``repository`` itself (a second ledger a team keeps on purpose) do not count.
    """
    own = f"git:{repository}:" if repository else None
    leased = sorted(
        {
            port
            for lease in store.leases()
            if own is None or not lease.identity.startswith(own)
            for port in (lease.backend, lease.frontend)
        }
    )
    span = OFFER_PAIRS * policy.step

    def free(backend: int, frontend: int) -> bool:
        return all(bisect_left(leased, start) == bisect_left(leased, start + span) for start in (backend, frontend))

    if free(policy.backend_start, policy.frontend_start):
        return None
    for shift in range(OFFER_STEP, MAX_PORT, OFFER_STEP):
        backend, frontend = policy.backend_start + shift, policy.frontend_start + shift
        if frontend + span > policy.max_port:
            return None
        if free(backend, frontend):
            return backend, frontend
    return None
