"""Holding the ledger's lock from a test, as another writer would, without writing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portalloc.core.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.storage import locking
from portalloc.storage.ledgerdir import open_directory


@contextmanager
def locked(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the ledger's cross-process lock (``locking.acquire``); ``LedgerLocked`` after ``timeout`` seconds."""
    with open_directory(path, "lock") as directory:
        held = locking.acquire(directory, timeout)
        try:
            yield
        finally:
            held.release()
