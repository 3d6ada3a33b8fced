"""What a ledger holds, counted and checked: ports held twice (``check``) and capacity and use (``stats``).

Pure functions over allocations and a ``Ledger``: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from pydantic import BaseModel, ConfigDict

from portalloc.core.keys import Claim, Key
from portalloc.core.models import Ledger
from portalloc.core.policyrules import is_bad_pair

if TYPE_CHECKING:
    from portalloc.core.shapes import Row


class Conflict(NamedTuple):
    """A port held more than once, or a key that appears more than once (``port`` is ``None``)."""

    port: int | None
    holders: tuple[Claim, ...]

    def describe(self) -> str:
        """One line for a user."""
        if self.port is None:
            return f"{self.holders[0].describe()} is allocated {len(self.holders)} times"
        return f"port {self.port} is used by " + " and ".join(holder.describe() for holder in self.holders)


class Usage(BaseModel):
    """Capacity and use of a ledger, for ``stats``: in the policy, and usable on this machine (``_here``).

    The one list of these counts: ``reports.StatsReport`` (``stats --json``, ``GET
    /v1/stats``) extends this model, so its count keys are these fields, in this order.
    """

    # Built when first used, not at import: a command-line write that never reports usage skips the cost.
    model_config = ConfigDict(frozen=True, defer_build=True)

    allocations: int
    models: int
    capacity: int
    free_pairs: int
    bad_port_pairs: int
    off_sequence: int
    #: Pairs of ``capacity`` with no port this machine keeps from new allocations, and how many are free.
    usable_here: int
    free_here: int


def find_conflicts(allocations: Iterable[Row]) -> list[Conflict]:
    """Every port held more than once (in any role) and every key that appears more than once."""
    holders: dict[int, list[Claim]] = {}
    seen: dict[Key, int] = {}
    for a in allocations:
        seen[a.key] = seen.get(a.key, 0) + 1
        holders.setdefault(a.backend, []).append(Claim(a.model, a.app_num, "backend"))
        holders.setdefault(a.frontend, []).append(Claim(a.model, a.app_num, "frontend"))
    conflicts = [Conflict(None, (Claim(*key, None),) * count) for key, count in seen.items() if count > 1]
    conflicts += [Conflict(port, tuple(names)) for port, names in sorted(holders.items()) if len(names) > 1]
    return conflicts


def usage(ledger: Ledger, unusable: frozenset[int] = frozenset()) -> Usage:
    """Counts for ``stats``: allocations, models, usable pairs (not bad, not reserved), free pairs and more.

    ``unusable`` are the ports this machine keeps from new allocations (gathered by the
    caller: the OS ephemeral range, its reserved ports); ``usable_here`` and
    ``free_here`` count the pairs that touch none of them.
    """
    policy = ledger.policy
    used = ledger.used_ports
    reserved = policy.reserved_ports()
    capacity = free = bad = usable_here = free_here = 0
    for k in range(policy.pair_count):
        pair = policy.pair(k)
        if is_bad_pair(policy, *pair):
            bad += 1
            continue
        if pair[0] in reserved or pair[1] in reserved:
            continue
        capacity += 1
        is_free = pair[0] not in used and pair[1] not in used
        free += is_free
        if pair[0] not in unusable and pair[1] not in unusable:
            usable_here += 1
            free_here += is_free
    return Usage(
        allocations=len(ledger.allocations),
        models=len({a.model for a in ledger.allocations}),
        capacity=capacity,
        free_pairs=free,
        bad_port_pairs=bad,
        off_sequence=sum(1 for a in ledger.allocations if policy.index_of(*a.ports) is None),
        usable_here=usable_here,
        free_here=free_here,
    )
