"""Live status: each allocation's ports as this machine sees them now (``portalloc.machine.live``)."""

from __future__ import annotations

from portalloc.machine import live
from portalloc.service.target import LedgerTarget


def live_status(target: LedgerTarget, model_name: str | None = None) -> list[live.PairReport]:
    """Every allocation (or ``model_name``'s) with its two ports' reports, as this machine sees them now."""
    return live.inspect(
        (a.model, a.app_num, a.backend, a.frontend)
        for a in target.file.read().allocations
        if model_name is None or a.model == model_name
    )
