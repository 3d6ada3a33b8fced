"""One watcher of the ledger for all the event streams: a stream waits to be woken, it does not poll.

Each ``/v1/events`` stream used to ``stat`` the ledger every ``POLL_SECONDS`` through a
thread of its own: 2,000 idle streams took the thread pool and the event loop from
everything else (a ``PUT``'s median went from 2 ms to 493 ms). Now one task looks at
the file every ``POLL_SECONDS`` while at least one stream is open, and publishes what it
read when that changed (another ``Ledger`` object, or another error); a stream waiting
for the next change is one parked coroutine. The number of streams is capped:
``subscribe`` past the cap returns ``None`` and the route answers 503.
"""

from __future__ import annotations

import asyncio
import threading
from typing import NamedTuple

import anyio

from portalloc.core.models import Ledger
from portalloc.errors import PortallocError
from portalloc.service.facade import PortAllocationService

#: How often the watcher looks at the file; also how soon the streams end after SIGTERM.
POLL_SECONDS = 0.1


class Snapshot(NamedTuple):
    """What the watcher read: the ledger, or the error that reading it gave; ``version`` counts changes."""

    version: int
    ledger: Ledger
    error: PortallocError | None = None


class Broadcaster:
    """The watcher and its subscribers (the open event streams), at most ``max_streams`` of them.

    Everything here runs on the server's event loop; only the read itself goes to a thread.
    """

    def __init__(self, service: PortAllocationService, stopping: threading.Event, max_streams: int) -> None:
        self.service = service
        self.stopping = stopping
        self.max_streams = max_streams
        self.subscribers = 0
        self.latest: Snapshot | None = None
        #: Counts what was published, across watcher restarts: a version is never reused.
        self._version = 0
        self._changed = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    def subscribe(self) -> Subscription | None:
        """A new stream's subscription, or ``None`` when ``max_streams`` streams are open already."""
        if self.subscribers >= self.max_streams:
            return None
        self.subscribers += 1
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        return Subscription(self)

    async def wait(self) -> None:
        """Until the next change is published (or the server stops)."""
        await self._changed.wait()

    def watching(self) -> bool:
        """Whether the watcher runs (it ends with its last subscriber, at the stop, or on a bug)."""
        return self._watcher is not None and not self._watcher.done()

    def _publish(self, snapshot: Snapshot | None) -> None:
        self.latest = snapshot
        # Every waiter holds the old event: setting it wakes them all, and later waiters get the new one.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _watch(self) -> None:
        try:
            while self.subscribers and not self.stopping.is_set():
                try:
                    ledger, error = await anyio.to_thread.run_sync(self.service.ledger), None
                except PortallocError as failure:
                    ledger, error = Ledger(), failure
                last = self.latest
                if last is None or (ledger is not last.ledger if error is None else str(error) != str(last.error)):
                    self._version += 1
                    self._publish(Snapshot(self._version, ledger, error))
                await asyncio.sleep(POLL_SECONDS)
        finally:
            # Nobody listens, the server stops, or a bug ended the loop: forget what was read, so the
            # next stream starts from a fresh read, and wake the streams so they see why.
            self._publish(None)


class Subscription:
    """One stream's place among the subscribers: the snapshots it has not seen yet, one at a time."""

    def __init__(self, broadcaster: Broadcaster) -> None:
        self.broadcaster = broadcaster
        self.seen = 0
        self.closed = False

    async def next(self) -> Snapshot | None:
        """The latest snapshot once it is newer than the last one returned; ``None`` once the stream must end."""
        broadcaster = self.broadcaster
        while not broadcaster.stopping.is_set():
            latest = broadcaster.latest
            if latest is not None and latest.version > self.seen:
                self.seen = latest.version
                return latest
            if not broadcaster.watching():
                return None  # the watcher failed (its traceback is in the log): end the stream
            await broadcaster.wait()
        return None

    def close(self) -> None:
        """Leave the subscribers (again: a no-op), so the slot goes to the next stream."""
        if not self.closed:
            self.closed = True
            self.broadcaster.subscribers -= 1
