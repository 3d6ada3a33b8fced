"""What every route shares: the service, the lock that serializes this process's writes, the streams.

Reads take no lock, as in the CLI: the ledger is replaced by an atomic rename, so a
lock-free read sees one whole file, and ``LedgerFile`` swaps its parse cache in one
assignment (see ``storage/ledger.py``), so threads reading at once are safe. Only
writes are serialized, here within the process and by the ledger's file lock across
processes; a writer stopped while holding that lock (Ctrl-Z on a ``portalloc get``)
delays the writes behind it, never a read. A write waits in one of the thread pool's
threads, so at most ``MAX_WAITING_WRITES`` wait at once (one more is answered 503
``ledger_locked`` at once): the pool always has threads left for the reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from portalloc.errors import LedgerLocked
from portalloc.server.broadcast import Broadcaster
from portalloc.server.limits import ServerLimits
from portalloc.service.facade import PortAllocationService

T = TypeVar("T")
#: Writes that may wait for the write lock at once; the thread pool has 40 threads.
MAX_WAITING_WRITES = 16


@dataclass
class ServerState:
    """The one service of the server and how routes reach it.

    FastAPI runs the routes in a thread pool. ``read`` calls the service at once;
    ``write`` holds this process's write lock, so one thread at a time waits for the
    ledger's file lock (the others wait here, not in a poll loop of their own).
    ``stopping`` is set on SIGTERM/SIGINT, so the event streams end and the server can
    stop; ``changes`` is the one watcher of the ledger that every event stream shares.
    """

    service: PortAllocationService
    stopping: threading.Event = field(default_factory=threading.Event)
    max_streams: int = ServerLimits().max_streams
    changes: Broadcaster = field(init=False)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _write_slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_WAITING_WRITES)
    )

    def __post_init__(self) -> None:
        self.changes = Broadcaster(self.service, self.stopping, self.max_streams)

    def read(self, function: Callable[[PortAllocationService], T]) -> T:
        """``function(service)`` for a call that only reads: no lock, so a stuck writer cannot delay it."""
        return function(self.service)

    def write(self, function: Callable[[PortAllocationService], T]) -> T:
        """``function(service)`` with this process's write lock held; ``LedgerLocked`` if too many wait."""
        if not self._write_slots.acquire(blocking=False):
            raise LedgerLocked(
                f"{MAX_WAITING_WRITES} writes are already waiting for the ledger's lock in this server "
                "(is a writer stopped while holding it?); try again"
            )
        try:
            with self._write_lock:
                return function(self.service)
        finally:
            self._write_slots.release()


def server_state(request: Request) -> ServerState:
    """The ``ServerState`` of the app serving ``request``."""
    state: ServerState = request.app.state.portalloc
    return state


#: A route parameter that receives the ``ServerState``.
State = Annotated[ServerState, Depends(server_state)]
