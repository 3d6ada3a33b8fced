"""The host lease store as a person reads it: each ledger's name, and the ports two keys' live leases claim.

Kept apart from ``service.host_admin`` (which reads ledgers, and so pydantic) so that
``portalloc host`` lists 100,000 leases without loading the models it never uses.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def clashes(leases: Iterable[Lease], port: int | None = None) -> list[Clash]:
    """The ports that more than one of ``leases`` (live ones, as ``LeaseStore.leases`` reads them) hold,
    by port (only ``port`` if given)."""
    holders: dict[int, list[Lease]] = {}
    for lease in leases:
        for held in {lease.backend, lease.frontend}:
            if port is None or held == port:
                holders.setdefault(held, []).append(lease)
    return [Clash(held, tuple(found)) for held, found in sorted(holders.items()) if len(found) > 1]
