"""How full each part of the ledger is: per pool, per model, and as Prometheus text. Pure: no I/O.

A ledger's sequence of pairs is cut into ranges: each pool, and the shared range (every
pair outside a pool). For each range this counts its usable pairs (not on a browsers'
bad port, not reserved, and no port in ``unusable``: the ports this machine keeps from
new allocations, gathered by the caller), the allocations on them, the free ones, and
the longest run of consecutive free pairs (what a model that needs neighbouring ports
can still get).
``prometheus_text`` is what ``stats --format prometheus`` prints and what an HTTP
``/metrics`` serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from portalloc.core.audit import find_conflicts, usage
from portalloc.core.models import Ledger, Pool
from portalloc.core.policyrules import is_usable_pair, shared_segments

#: The ``range`` label and name of the pairs outside every pool.
SHARED = "shared"


class RangeUse(NamedTuple):
    """How full one range is: the shared range (``pool`` is ``None``) or a pool."""

    pool: Pool | None
    allocations: int
    capacity: int
    free: int
    largest_free_run: int

    @property
    def name(self) -> str:
        """``shared``, or ``pool <model>``."""
        return SHARED if self.pool is None else f"pool {self.pool.model}"

    @property
    def utilisation(self) -> float:
        """The share of usable pairs that are not free (0.0 to 1.0; 1.0 when there are none)."""
        return (self.capacity - self.free) / self.capacity if self.capacity else 1.0


class ModelUse(NamedTuple):
    """One model: its allocations and the room its next apps have (its pool, then the shared range)."""

    model: str
    pool: Pool | None
    allocations: int
    #: Pairs the model holds plus the free pairs it may still take.
    capacity: int
    free: int
    largest_free_run: int

    @property
    def utilisation(self) -> float:
        """``allocations / capacity`` (1.0 when it can take nothing)."""
        return self.allocations / self.capacity if self.capacity else 1.0


class _Scan(NamedTuple):
    usable: list[bool]
    free: list[bool]
    holders: list[int]  # allocations on each pair (0, 1, more when a merge went wrong)


def _scan(ledger: Ledger, unusable: frozenset[int]) -> _Scan:
    policy = ledger.policy
    reserved = policy.reserved_ports() | unusable
    used = ledger.used_ports
    count, step = policy.pair_count, policy.step
    backends = range(policy.backend_start, policy.backend_start + count * step, step)
    frontends = range(policy.frontend_start, policy.frontend_start + count * step, step)
    usable = [is_usable_pair(policy, reserved, k) for k in range(count)]
    free = [ok and b not in used and f not in used for ok, b, f in zip(usable, backends, frontends, strict=True)]
    holders = [0] * policy.pair_count
    for a in ledger.allocations:
        k = policy.index_of(*a.ports)
        if k is not None:
            holders[k] += 1
    return _Scan(usable, free, holders)


def _largest_run(free: list[bool], segments: Iterable[range]) -> int:
    best = 0
    for segment in segments:
        run = 0
        for k in segment:
            run = run + 1 if free[k] else 0
            best = max(best, run)
    return best


def _range_use(scan: _Scan, pool: Pool | None, segments: list[range]) -> RangeUse:
    ks = [k for segment in segments for k in segment]
    return RangeUse(
        pool=pool,
        allocations=sum(scan.holders[k] for k in ks),
        capacity=sum(scan.usable[k] for k in ks),
        free=sum(scan.free[k] for k in ks),
        largest_free_run=_largest_run(scan.free, segments),
    )


def range_usage(ledger: Ledger, unusable: frozenset[int] = frozenset()) -> list[RangeUse]:
    """The shared range, then each pool in sequence order; pairs touching ``unusable`` are not counted."""
    policy, scan = ledger.policy, _scan(ledger, unusable)
    rows = [_range_use(scan, None, shared_segments(policy))]
    rows += [_range_use(scan, pool, [range(pool.first, pool.last + 1)]) for pool in policy.pools]
    return rows


def model_usage(ledger: Ledger, ranges: list[RangeUse] | None = None) -> list[ModelUse]:
    """One row per model with an allocation or a pool, sorted by name (``ranges``: ``range_usage``, if known)."""
    policy = ledger.policy
    by_pool = {row.pool.model if row.pool else None: row for row in ranges or range_usage(ledger)}
    counts: dict[str, int] = {}
    for a in ledger.allocations:
        counts[a.model] = counts.get(a.model, 0) + 1
    for each in policy.pools:
        counts.setdefault(each.model, 0)
    rows = []
    for model in sorted(counts):
        pool = policy.pool_of(model)
        room = [by_pool[model]] if pool is not None else []
        if pool is None or pool.overflow == "shared":
            room.append(by_pool[None])
        free = sum(row.free for row in room)
        rows.append(
            ModelUse(model, pool, counts[model], counts[model] + free, free, max(r.largest_free_run for r in room))
        )
    return rows


def text_bar(fraction: float, width: int = 20) -> str:
    """``[#####...............]``: ``fraction`` (0.0 to 1.0) of ``width`` cells filled; any use shows one."""
    filled = min(width, max(1, round(fraction * width))) if fraction > 0 else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _label(value: str) -> str:
    # The exposition format's escapes inside a label value: backslash, double quote, newline.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _range_labels(row: RangeUse) -> str:
    # One label set for every sample of a family (OpenMetrics asks it): the shared range's model is "".
    if row.pool is None:
        return f'{{range="{SHARED}",model=""}}'
    return f'{{range="pool",model="{_label(row.pool.model)}"}}'


def prometheus_text(ledger: Ledger, unusable: frozenset[int] = frozenset()) -> str:
    """The ledger's gauges in the Prometheus text exposition format (version 0.0.4), ending in a newline.

    Per range (``range="shared",model=""``, or ``range="pool",model="…"``): allocated, available
    and usable pairs on this machine (none touching ``unusable``). Overall: allocations,
    available and usable pairs in the policy and on this machine, reserved ports,
    conflicts; per model: allocations.
    """
    ranges = range_usage(ledger, unusable)
    overall = usage(ledger, unusable)
    families: list[tuple[str, str, list[tuple[str, int]]]] = [
        (
            "portalloc_range_allocated_pairs",
            "Allocations on the pairs of a range (a pool, or the shared range outside every pool).",
            [(_range_labels(r), r.allocations) for r in ranges],
        ),
        (
            "portalloc_range_available_pairs",
            "Free pairs of a range usable on this machine.",
            [(_range_labels(r), r.free) for r in ranges],
        ),
        (
            "portalloc_range_capacity_pairs",
            "Pairs of a range usable on this machine (no browsers' bad port, reserved, ephemeral or OS-reserved port).",
            [(_range_labels(r), r.capacity) for r in ranges],
        ),
        ("portalloc_allocated_pairs", "Allocations in the ledger.", [("", len(ledger.allocations))]),
        ("portalloc_available_pairs", "Free usable pairs in the whole policy.", [("", overall.free_pairs)]),
        ("portalloc_capacity_pairs", "Usable pairs in the whole policy.", [("", overall.capacity)]),
        (
            "portalloc_available_pairs_here",
            "Free pairs usable on this machine (none in the OS ephemeral range or reserved by the OS).",
            [("", overall.free_here)],
        ),
        (
            "portalloc_capacity_pairs_here",
            "Pairs usable on this machine (none in the OS ephemeral range or reserved by the OS).",
            [("", overall.usable_here)],
        ),
        ("portalloc_reserved_ports", "Ports the policy reserves.", [("", len(ledger.policy.reserved_ports()))]),
        (
            "portalloc_conflicts",
            "Ports held twice and keys listed twice (portalloc check).",
            [("", len(find_conflicts(ledger.allocations)))],
        ),
        (
            "portalloc_model_allocations",
            "Allocations of one model.",
            [(f'{{model="{_label(m.model)}"}}', m.allocations) for m in model_usage(ledger, ranges)],
        ),
    ]
    lines = []
    for name, help_text, samples in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{labels} {value}" for labels, value in samples]
    return "\n".join(lines) + "\n"
