"""The ledger's gauges in the Prometheus text exposition format (``GET /metrics``).

Pure: a ``Ledger`` in, text out, so the HTTP server and any other caller print the same.
"""

from __future__ import annotations

from portalloc import allocator
from portalloc.models import Ledger

_GAUGES = (
    ("portalloc_allocated_pairs", "Port pairs held by an allocation in the ledger."),
    ("portalloc_available_pairs", "Port pairs the policy can still hand out."),
    ("portalloc_capacity_pairs", "Port pairs the policy can hand out in all (bad-port pairs excluded)."),
    ("portalloc_conflicts", "Ports or keys the ledger holds more than once (0 when clean)."),
)


def prometheus_text(ledger: Ledger) -> str:
    """The ledger's allocated, available and total pairs and its conflicts, as Prometheus gauges."""
    usage = allocator.usage(ledger)
    values = (
        usage.allocations,
        usage.free_pairs,
        usage.capacity,
        len(allocator.find_conflicts(ledger.allocations)),
    )
    lines = []
    for (name, help_text), value in zip(_GAUGES, values, strict=True):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n"
