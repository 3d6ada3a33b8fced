"""``portalloc.server.quietlog``: a flood of one log message becomes one line per interval, with a count."""

from __future__ import annotations

import logging

import pytest

from portalloc.server.quietlog import MAX_KINDS, MAX_PER_INTERVAL, RepeatFilter, install, uninstall


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(message: str, name: str = "uvicorn.error", level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_a_repeated_message_passes_once_per_interval_and_then_says_how_many_were_dropped() -> None:
    clock = Clock()
    repeat = RepeatFilter(interval=10, clock=clock)
    passed = [repeat.filter(_record("Invalid HTTP request received.")) for _ in range(1000)]
    assert passed.count(True) == 1 and passed[0]
    clock.now += 10
    record = _record("Invalid HTTP request received.")
    assert repeat.filter(record)
    assert record.getMessage() == "Invalid HTTP request received. (999 more like this were not logged)"


def test_kinds_are_told_apart_by_logger_level_and_first_line() -> None:
    repeat = RepeatFilter(interval=10, clock=Clock())
    assert repeat.filter(_record("socket.accept() out of system resource\nsocket: fd=3", name="asyncio"))
    assert not repeat.filter(_record("socket.accept() out of system resource\nsocket: fd=4", name="asyncio"))
    assert repeat.filter(_record("socket.accept() out of system resource", name="uvicorn.error"))
    assert repeat.filter(_record("socket.accept() out of system resource", name="asyncio", level=logging.ERROR))


def test_many_kinds_are_capped_per_interval_and_in_memory() -> None:
    clock = Clock()
    repeat = RepeatFilter(interval=10, clock=clock)
    passed = sum(repeat.filter(_record(f"client {number} did something")) for number in range(10_000))
    assert passed == MAX_PER_INTERVAL
    never_logged = repeat.kinds[("uvicorn.error", logging.WARNING, f"client {MAX_PER_INTERVAL} did something")]
    assert (never_logged.dropped, never_logged.text) == (1, f"client {MAX_PER_INTERVAL} did something")
    assert len(repeat.kinds) <= MAX_KINDS
    clock.now += 10
    assert repeat.filter(_record("a new kind, in a new interval"))


def test_uninstall_logs_what_was_left_out(caplog: pytest.LogCaptureFixture) -> None:
    repeat = install(("portalloc.test.quietlog",))
    log = logging.getLogger("portalloc.test.quietlog")
    with caplog.at_level(logging.WARNING, logger="portalloc.test.quietlog"):
        for _ in range(5):
            log.warning("closed a connection")
        uninstall(repeat, ("portalloc.test.quietlog",))
        log.warning("closed a connection")  # the filter is gone
    assert [r.getMessage() for r in caplog.records] == [
        "closed a connection",
        "closed a connection (4 more like this were not logged)",
        "closed a connection",
    ]
