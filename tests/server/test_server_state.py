"""``portalloc.server.state``: reads from many threads at once, lock-free, while writes go one at a time."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[test]')")

from portalloc.core.models import Ledger
from portalloc.errors import LedgerLocked
from portalloc.server.state import MAX_WAITING_WRITES, ServerState
from portalloc.service.facade import PortAllocationService

WRITES, READERS = 30, 4


def test_lock_free_reads_in_threads_see_only_whole_ledgers_in_the_order_written(new_ledger: Path) -> None:
    # One service, one parse cache, shared by every thread, as the server's thread pool shares it.
    state = ServerState(PortAllocationService(new_ledger, probe=False))
    done = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        seen = 0
        while not done.is_set():
            ledger: Ledger = state.read(lambda service: service.ledger())
            models = sorted(int(a.model.removeprefix("m")) for a in ledger.allocations)
            if models != list(range(len(models))) or len(models) < seen:
                problems.append(f"read {models} after {seen} rows")
            seen = len(models)
            if models:
                last = partial(PortAllocationService.get_ports, model_name=f"m{models[-1]}", app_num=1)
                if state.read(last) is None:
                    problems.append(f"m{models[-1]} listed but not found")

    readers = [threading.Thread(target=reader) for _ in range(READERS)]
    for thread in readers:
        thread.start()
    try:
        for number in range(WRITES):
            state.write(partial(PortAllocationService.allocate_many, keys=[(f"m{number}", 1)]))
    finally:
        done.set()
        for thread in readers:
            thread.join()
    assert problems == []
    assert len(state.read(lambda service: service.ledger()).allocations) == WRITES


def test_writes_past_the_waiting_limit_are_refused_at_once(new_ledger: Path) -> None:
    state = ServerState(PortAllocationService(new_ledger, probe=False))
    release = threading.Event()
    entered = threading.Barrier(2)

    def hold(service: PortAllocationService) -> None:
        entered.wait()
        release.wait()

    holders = [threading.Thread(target=state.write, args=(hold,))]
    holders += [
        threading.Thread(target=state.write, args=(lambda service: None,)) for _ in range(MAX_WAITING_WRITES - 1)
    ]
    for thread in holders:
        thread.start()
    try:
        entered.wait()  # the first write holds the lock, the others wait for it
        for _ in range(1000):  # until all of them have taken their places (the slots are private: no API says)
            if not state._write_slots.acquire(blocking=False):
                break
            state._write_slots.release()
            threading.Event().wait(0.01)
        with pytest.raises(LedgerLocked, match=f"^{MAX_WAITING_WRITES} writes are already waiting"):
            state.write(lambda service: None)
        assert state.read(lambda service: service.ledger()).allocations == []  # reads go on meanwhile
    finally:
        release.set()
        for thread in holders:
            thread.join()
    state.write(lambda service: None)  # and once they are done, a write has a place again
