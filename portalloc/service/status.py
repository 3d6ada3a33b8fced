"""Live status: each allocation's ports as this machine sees them now (``portalloc.machine.live``)."""

from __future__ import annotations

from collections.abc import Iterable

from portalloc.core.models import Allocation
from portalloc.machine import live


def live_status(pairs: Iterable[Allocation], model_name: str | None = None) -> list[live.PairReport]:
    """Every pair (or ``model_name``'s) with its two ports' reports, as this machine sees them now.

    ``pairs``: the allocations as this work tree uses them (``PortAllocationService.pairs_in_use``).
    """
    return live.inspect(
        (a.model, a.app_num, a.backend, a.frontend) for a in pairs if model_name is None or a.model == model_name
    )
