"""A log an attacker cannot flood: each kind of message at most once per interval, with a count.

A server under attack logs the same few things over and over ("Invalid HTTP request
received.", asyncio's "socket.accept() out of system resource" with its traceback):
1,100 half-open connections once wrote 281,772 tracebacks, 114 MB in 22 s. The
``RepeatFilter`` lets the first record of each kind through (a kind is the logger, the
level and the message's first line), drops the others for ``interval`` seconds, and
adds to the next one it lets through how many were dropped (``uninstall``, when the
server stops, logs the counts still open). It remembers at most
``MAX_KINDS`` kinds and lets at most ``MAX_PER_INTERVAL`` records of any kind through
per interval, so the log grows by a bounded number of lines per interval whatever
arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

#: The loggers a request from outside can make write: uvicorn's and the event loop's.
FLOODABLE_LOGGERS = ("uvicorn.error", "asyncio")
#: Seconds during which a second record of one kind is only counted.
INTERVAL_SECONDS = 10.0
#: Kinds remembered at once (a message carrying varying text makes a new kind each time).
MAX_KINDS = 64
#: Records let through per interval, all kinds together.
MAX_PER_INTERVAL = 20


class _Kind(NamedTuple):
    """What the filter remembers of one kind of record."""

    #: When one was last let through.
    passed_at: float
    #: How many were dropped since.
    dropped: int
    #: The first line of the last one let through, as it was logged.
    text: str


class RepeatFilter(logging.Filter):
    """Drop repeats of a kind of record within ``interval`` seconds; report how many were dropped."""

    def __init__(self, interval: float = INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        #: Per kind (logger, level, the message's first line before formatting): what was seen.
        self.kinds: dict[tuple[str, int, str], _Kind] = {}
        self.window_start = -interval
        self.passed_in_window = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """``True`` to log ``record`` (its message then says how many like it were dropped)."""
        now = self.clock()
        if now - self.window_start >= self.interval:
            self.window_start, self.passed_in_window = now, 0
        kind = (record.name, record.levelno, str(record.msg).partition("\n")[0][:200])
        seen = self.kinds.get(kind, _Kind(now - self.interval, 0, ""))
        if now - seen.passed_at < self.interval or self.passed_in_window >= MAX_PER_INTERVAL:
            if kind in self.kinds or len(self.kinds) < MAX_KINDS:
                text = seen.text or record.getMessage().partition("\n")[0]  # a kind never let through yet
                self.kinds[kind] = _Kind(seen.passed_at, seen.dropped + 1, text)
            return False
        if len(self.kinds) >= MAX_KINDS and kind not in self.kinds:
            self.kinds.clear()  # forget old kinds rather than grow: the worst is one more line each
        self.kinds[kind] = _Kind(now, 0, record.getMessage().partition("\n")[0])
        self.passed_in_window += 1
        if seen.dropped:
            record.msg = f"{record.msg} ({seen.dropped} more like this were not logged)"
        return True


def install(loggers: tuple[str, ...] = FLOODABLE_LOGGERS) -> RepeatFilter:
    """Put one ``RepeatFilter`` on each of ``loggers`` (a filter on a logger sees what is logged to it)."""
    repeat = RepeatFilter()
    for name in loggers:
        logging.getLogger(name).addFilter(repeat)
    return repeat


def uninstall(repeat: RepeatFilter, loggers: tuple[str, ...] = FLOODABLE_LOGGERS) -> None:
    """Take ``repeat`` off ``loggers`` and log, once per kind, how many records it dropped since it last let one by."""
    for name in loggers:
        logging.getLogger(name).removeFilter(repeat)
    for (name, level, _), seen in repeat.kinds.items():
        if seen.dropped:
            logging.getLogger(name).log(level, "%s (%d more like this were not logged)", seen.text, seen.dropped)
