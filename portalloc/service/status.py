"""Live status: each allocation's ports as this machine sees them now (``portalloc.machine.live``), and the
ports of the ledger that another key has leased on this machine (``service.host_admin``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from portalloc.core.models import Allocation, Ledger
from portalloc.machine import live
from portalloc.service.target import LedgerTarget

logger = logging.getLogger("portalloc")


def live_status(pairs: Iterable[Allocation], model_name: str | None = None) -> list[live.PairReport]:
    """Every pair (or ``model_name``'s) with its two ports' reports, as this machine sees them now.

    ``pairs``: the allocations as this work tree uses them (``PortAllocationService.pairs_in_use``).
    """
    return live.inspect(
        (a.model, a.app_num, a.backend, a.frontend) for a in pairs if model_name is None or a.model == model_name
    )


def shared_here(
    target: LedgerTarget[Ledger], model_name: str | None = None, *, ledger: Ledger | None = None
) -> list[tuple[Allocation, int, str]]:
    """``(allocation, port, message)`` for each port of the ledger (or of ``model_name``'s apps) that a live
    host lease of another key claims on this machine (``service.host_admin.shared_ports``).

    ``ledger``: these rows instead of the file's (an import's plan, written or not).

    A read never fails because of the store: with leases off there is nothing to compare
    with; a store that cannot be opened or read is a warning on the ``portalloc`` logger
    saying that this finding is missing, not that there is none.
    """
    from portalloc.service.host_admin import shared_ports

    host = target.host
    if host is None:
        return []
    ledger = target.read() if ledger is None else ledger
    from portalloc.machine.leases import STORE_ERRORS  # here: sqlite3 only once a store is in use

    try:
        store = host.existing_store()
        found = [] if store is None else shared_ports(store, target.path, ledger)
    except STORE_ERRORS as error:
        logger.warning(f"ports other ledgers lease on this machine are not shown: {error}")
        return []
    return [item for item in found if model_name is None or item[0].model == model_name]
