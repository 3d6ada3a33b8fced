"""The event stream's memory: ids that only grow, and the recent changes a reconnecting client missed.

Kept per ledger in the machine's state directory (``portalloc.machine.statedir``), as
``events/<digest of the ledger's path>.json``, never in the ledger (whose bytes must not
change for it): the next id, the allocations as last recorded, and the last
``JOURNAL_SIZE`` ``change`` events. So ids keep increasing across reconnects and server
restarts, and ``Last-Event-ID`` can be answered with exactly what came after it, or,
when that is no longer known, with a ``reset``. Every stream of every server on the
ledger records into the same file under a file lock; a change already recorded (another
stream saw it first) keeps its id, so two streams give one change one id.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, NamedTuple

from filelock import FileLock

from portalloc.core.models import Allocation
from portalloc.machine.statedir import state_dir
from portalloc.storage.files import atomic_write

#: How many changes a reconnecting client can catch up on.
JOURNAL_SIZE = 256
#: Seconds to wait for another stream's record (each holds the lock for one small write).
LOCK_SECONDS = 10


class Event(NamedTuple):
    """One server-sent event: its id, name and JSON data."""

    id: int
    name: str
    data: dict[str, Any]


def _rows(allocations: list[Allocation]) -> list[dict[str, Any]]:
    return [a.model_dump() for a in allocations]


class EventJournal:
    """The journal of one ledger's changes (see the module's description)."""

    def __init__(self, ledger: Path, directory: Path | None = None) -> None:
        digest = hashlib.sha256(str(ledger.resolve()).encode()).hexdigest()[:16]
        self.path = (directory or state_dir()) / "events" / f"{digest}.json"
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self.path.read_bytes())
        except (FileNotFoundError, ValueError):
            # No journal yet, or one that cannot be read: start over (a client's Last-Event-ID then gets a reset).
            return {"next": 1, "state": None, "entries": []}
        return loaded

    def record(self, allocations: list[Allocation], seen: int | None = None) -> tuple[int, list[Event]]:
        """Note the ledger's allocations as a stream sees them now.

        Returns the id of the latest change and, for a stream whose last event was
        ``seen``, the changes after it (whichever stream recorded them); ``None``: the
        stream starts now and has seen everything so far.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock, FileLock(f"{self.path}.lock", timeout=LOCK_SECONDS):
            journal = self._load()
            now = _rows(allocations)
            if journal["state"] != now:
                self._append(journal, now)
            newest = journal["next"] - 1
            after = newest if seen is None else seen
            return newest, [Event(*entry) for entry in journal["entries"] if entry[0] > after]

    def _append(self, journal: dict[str, Any], now: list[dict[str, Any]]) -> None:
        if journal["state"] is None:  # the first look at this ledger: nothing changed yet
            journal["state"] = now
            atomic_write(self.path, json.dumps(journal).encode())
            return
        before = {json.dumps(row) for row in journal["state"]}
        after = {json.dumps(row) for row in now}
        data = {
            "added": [row for row in now if json.dumps(row) not in before],
            "removed": [row for row in journal["state"] if json.dumps(row) not in after],
            "allocations": len(now),
        }
        journal["entries"] = [*journal["entries"], [journal["next"], "change", data]][-JOURNAL_SIZE:]
        journal["next"] += 1
        journal["state"] = now
        atomic_write(self.path, json.dumps(journal).encode())

    def since(self, last_id: str) -> list[Event] | None:
        """The changes after the client's ``Last-Event-ID``; ``None`` when they are not all known."""
        with self._lock:
            journal = self._load()
        if not last_id.isdigit():
            return None
        seen, newest = int(last_id), journal["next"] - 1
        entries = [Event(*entry) for entry in journal["entries"]]
        oldest = entries[0].id if entries else newest + 1
        if seen > newest or seen < oldest - 1:
            return None  # from another journal, or older than what is kept
        return [event for event in entries if event.id > seen]
