"""The host lease store as a person reads it: each ledger's name, and the ports two keys' live leases claim.

Kept apart from ``service.host_admin`` (which reads ledgers, and so pydantic) so that
``portalloc host`` lists 100,000 leases without loading the models it never uses; the
counting and the first ports are the store's indexed queries (``LeaseStore.live_by_port``,
``claimed_twice``), so showing the first hundred does not load every lease.
"""

from __future__ import annotations

from dataclasses import dataclass

from portalloc.machine.leases import Instance, Lease, LeaseStore


@dataclass(frozen=True)
class Clash:
    """A port that live leases of two or more keys claim (two ledgers that committed 5001 before leases)."""

    port: int
    holders: tuple[Lease, ...]


def ledger_labels(store: LeaseStore) -> dict[str, str]:
    """Each ledger as a person knows it, by identity: the copy with the shortest path (the main work tree,
    usually), preferring one that still exists."""
    return {i.identity: label(i) for i in store.instances()}


def label(instance: Instance) -> str:
    """The name ``ledger_labels`` gives one ledger."""
    copies = instance.present() or instance.checkouts
    if not copies:
        return instance.identity
    return str(min(copies, key=lambda path: (len(path.parts), str(path))))


def clashes(store: LeaseStore, port: int | None = None, limit: int | None = None) -> tuple[int, list[Clash]]:
    """How many ports the live leases of more than one key hold (only ``port``, if given), and the first
    ``limit`` of them (all with ``None``) by port, with their holders."""
    ports = [held for held in store.claimed_twice() if port is None or held == port]
    shown = ports if limit is None else ports[:limit]
    holders: dict[int, list[Lease]] = {held: [] for held in shown}
    # A few ports: their holders by index. Many: one pass over every live lease costs less than many lookups.
    wanted = set(shown)
    for lease in store.live_by_port(ports=wanted if len(wanted) <= _FEW else None)[1]:
        for held in {lease.backend, lease.frontend} & wanted:
            holders[held].append(lease)
    return len(ports), [Clash(held, tuple(holders[held])) for held in shown]


#: Up to this many ports are looked up by index (SQLite allows 32,766 parameters; each port is asked twice).
_FEW = 500
