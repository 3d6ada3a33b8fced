"""The pair of a key the ledger already holds, as ``get``, ``env`` and ``run`` use it: click-free and pydantic-free.

One function for both doors: the click command line (``Settings.pair_for``) and the quick
front door (``cli.quick``) call it, so they cannot disagree about what a read does: find
the key's row without a lock (``storage.lookup``), let the host lease store take in a
ledger that changed since it was last leased here (``machine.syncstamp``), and warn about
a port of the pair that something else holds now (``machine.live``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple


class KnownPair(NamedTuple):
    """A pair the ledger holds, and the ``Warning:`` lines (without the prefix) it comes with."""

    backend: int
    frontend: int
    warnings: list[str]


def known_pair(
    ledger_path: Path, model: str, app_num: int, *, leases: bool, probe: bool, sync: Callable[[], object]
) -> KnownPair | None:
    """The pair of ``(model, app_num)`` in the ledger, or ``None`` when the full path must decide (a new key…).

    ``sync`` is called when the ledger changed since its rows were leased on this machine
    (``leases``: the host lease store is in use): the click path reads the ledger through
    the service, which leases them. ``probe`` (``--no-probe`` turns it off; so does the
    policy's ``"probe": false``) looks at the machine for ports that something else holds.
    """
    from portalloc.storage.lookup import find_pair

    hit = find_pair(ledger_path, model, app_num)
    if hit is None:
        return None
    if leases:
        from portalloc.machine.syncstamp import signature, stale

        seen = signature(ledger_path)
        if seen is not None and stale(None, ledger_path, seen):
            sync()  # the ledger changed since its rows were leased here: the read leases them
    warnings: list[str] = []
    if probe and hit.probe:
        from portalloc.machine.live import held_warnings

        warnings = held_warnings(model, app_num, hit.backend, hit.frontend)
    return KnownPair(hit.backend, hit.frontend, warnings)
