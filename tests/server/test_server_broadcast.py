"""``portalloc.server.broadcast``: one watcher wakes every subscriber; the cap; a failed watcher ends the streams."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[test]')")

from portalloc.server.broadcast import Broadcaster
from portalloc.service.facade import PortAllocationService


def test_one_watcher_wakes_every_subscriber_and_the_cap_holds(new_ledger: Path) -> None:
    service = PortAllocationService(new_ledger, probe=False)

    async def main() -> None:
        broadcaster = Broadcaster(service, threading.Event(), max_streams=3)
        subscriptions = [broadcaster.subscribe() for _ in range(4)]
        assert subscriptions[3] is None  # past the cap
        streams = [s for s in subscriptions if s is not None]
        firsts = [await s.next() for s in streams]
        assert all(f is not None and f.ledger.allocations == [] for f in firsts)
        await asyncio.to_thread(service.get_or_allocate_ports, "m", 1)  # another thread writes the file
        changed = await asyncio.wait_for(asyncio.gather(*(s.next() for s in streams)), timeout=30)
        assert [[a.model for a in c.ledger.allocations] for c in changed if c is not None] == [["m"]] * 3
        streams[0].close()
        streams[0].close()  # twice is once
        assert broadcaster.subscribers == 2 and broadcaster.subscribe() is not None

    asyncio.run(main())


def test_a_watcher_that_fails_ends_the_streams_instead_of_leaving_them_waiting(
    new_ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = PortAllocationService(new_ledger, probe=False)

    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "ledger", broken)

    async def main() -> None:
        broadcaster = Broadcaster(service, threading.Event(), max_streams=3)
        subscription = broadcaster.subscribe()
        assert subscription is not None
        assert await asyncio.wait_for(subscription.next(), timeout=30) is None

    asyncio.run(main())


def test_the_stop_ends_every_stream(new_ledger: Path) -> None:
    service = PortAllocationService(new_ledger, probe=False)
    stopping = threading.Event()

    async def main() -> None:
        broadcaster = Broadcaster(service, stopping, max_streams=3)
        subscription = broadcaster.subscribe()
        assert subscription is not None and await subscription.next() is not None
        waiting = asyncio.ensure_future(subscription.next())
        stopping.set()  # as SIGTERM does
        assert await asyncio.wait_for(waiting, timeout=30) is None

    asyncio.run(main())
