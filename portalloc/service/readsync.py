"""The best-effort lease sync on a read: a ledger that changed since this machine's host leases last took
it in has its rows leased when it is read.

Rows arrive by git (``pull``, ``checkout``, ``merge``, ``rebase``) without a portalloc
write. The hooks ``git-setup`` installs run ``portalloc host sync``; where they are
missing, the next read does the same leasing (not the part that asks git which commit
released a key: a read spawns no git). "Changed" is the ledger's stamp
(``machine.syncstamp``), which every write that leases the ledger's rows and every
``host sync`` records, so a read of an unchanged ledger costs a ``stat`` and a small
file read and never opens the store.

A read never creates the store (with none yet, nothing is leased here to sync into),
and never fails or waits long because of it: another process's
store transaction is waited for ``READ_WAIT_MS`` at most, and a store that cannot be
had is one warning; either way the stamp stays as it was and the next read tries again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from portalloc.machine import syncstamp
from portalloc.service.host import HostLeases
from portalloc.storage.ledger import LedgerFile

if TYPE_CHECKING:
    from portalloc.core.shapes import LedgerShape

L = TypeVar("L", bound="LedgerShape")

logger = logging.getLogger("portalloc")

#: How long a read waits for another process's store transaction before leaving the sync to the next read.
READ_WAIT_MS = 100


def read(file: LedgerFile[L], host: HostLeases | None, synced: list[str]) -> L:
    """``file``'s ledger, its rows leased here first if it changed since they last were (``host``: leases on).

    ``synced`` holds the signature this caller last saw taken in (kept between reads, so a
    long-lived service looks at the stamp once per version of the file).
    """
    if host is None:
        return file.read()
    seen = syncstamp.signature(file.path)  # before the read: a change after it is taken in by the next read
    ledger = file.read()
    if seen is None or seen in synced:
        return ledger
    if not syncstamp.stale(host.state_dir, file.path, seen) or _sync(host, file, ledger, seen):
        synced[:] = [seen]
    return ledger


def _sync(host: HostLeases, file: LedgerFile[Any], ledger: LedgerShape, seen: str) -> bool:
    from portalloc.machine.leases import STORE_ERRORS  # here: sqlite3 only once a store is in use

    try:
        host.sync(ledger, wait_ms=READ_WAIT_MS)
    except STORE_ERRORS as error:
        logger.warning(f"the rows of {file.path} are not leased on this machine yet: {error}")
        return False
    syncstamp.record(host.state_dir, file.path, seen)
    return True


def written(file: LedgerFile[Any], host: HostLeases | None, synced: list[str]) -> None:
    """After a write whose store transaction leased every row of the ledger it wrote: record it as taken in.

    The signature is read just after the write; a file git replaced in that instant
    would be recorded as taken in too (its rows are then leased by the next write or
    ``host sync``, never lost: a stamp only ever spares a read some work).
    """
    if host is None:
        return
    seen = syncstamp.signature(file.path)
    if seen is not None:
        syncstamp.record(host.state_dir, file.path, seen, real=file.written_through)
        synced[:] = [seen]
