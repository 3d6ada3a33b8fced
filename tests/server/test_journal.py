"""The event journal (``portalloc.server.journal``) on real files: ids, the bounded memory, resets."""

from __future__ import annotations

from pathlib import Path

from portalloc.core.models import Allocation
from portalloc.server.journal import JOURNAL_SIZE, EventJournal


def _state(count: int) -> list[Allocation]:
    return [Allocation(model="m", app_num=n, backend=5001 + 2 * n, frontend=8001 + 2 * n) for n in range(1, count + 1)]


def test_ids_grow_and_a_second_journal_object_on_the_file_continues_them(tmp_path: Path) -> None:
    journal = EventJournal(tmp_path / "portalloc.json", tmp_path / "state")
    assert journal.record(_state(0)) == (0, [])
    newest, events = journal.record(_state(1), 0)
    assert newest == 1 and [(e.id, e.name, len(e.data["added"])) for e in events] == [(1, "change", 1)]
    assert journal.record(_state(1), 1) == (1, [])  # nothing new: no event, no new id
    again = EventJournal(tmp_path / "portalloc.json", tmp_path / "state")  # a restarted server
    newest, events = again.record(_state(2), 1)
    assert newest == 2 and events[0].data["added"][0]["app_num"] == 2
    assert [e.id for e in (again.since("0") or [])] == [1, 2]


def test_what_is_older_than_the_journal_keeps_or_unknown_gets_none(tmp_path: Path) -> None:
    journal = EventJournal(tmp_path / "portalloc.json", tmp_path / "state")
    journal.record(_state(0))
    for count in range(1, JOURNAL_SIZE + 11):
        journal.record(_state(count % 2))  # one change each time
    newest = JOURNAL_SIZE + 10
    assert [e.id for e in journal.since(str(newest - 1)) or []] == [newest]
    assert journal.since("1") is None  # forgotten
    assert journal.since(str(newest + 5)) is None  # never given out here
    assert journal.since("not a number") is None
    assert journal.since(str(newest)) == []


def test_a_damaged_journal_starts_over(tmp_path: Path) -> None:
    journal = EventJournal(tmp_path / "portalloc.json", tmp_path / "state")
    journal.record(_state(0))
    journal.path.write_text("{ not json")
    assert journal.record(_state(1)) == (0, [])  # the state is recorded afresh
    assert journal.since("7") is None  # a client from before gets a reset
