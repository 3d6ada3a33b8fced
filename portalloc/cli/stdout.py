"""Standard output that says when it fails: a write or flush error on it is a ``StdoutFailed``.

A full disk is ENOSPC for the ledger too, and a failed flush discards its buffer (so
trying stdout again proves nothing): the error must carry where it came from. For the
duration of a command ``sys.stdout`` writes through ``_Guard``, a raw stream over the
same descriptor built from the ``io`` module's documented classes, and click's
``echo`` writes to it like to any text stream.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class StdoutFailed(OSError):
    """Writing or flushing standard output failed (its ``errno`` and ``strerror`` are the OS's)."""


class _Guard(io.RawIOBase):
    """File descriptor ``fd`` as a raw stream whose write errors are ``StdoutFailed``."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: ReadableBuffer) -> int:
        try:
            return os.write(self._fd, data)
        except OSError as error:
            raise StdoutFailed(error.errno, error.strerror) from error


@contextmanager
def guarded_stdout() -> Iterator[None]:
    """``sys.stdout`` raising ``StdoutFailed`` for its own failures, for the duration (restored after).

    A stdout without a file descriptor (a test runner's buffer) is left as it is.
    """
    original = sys.stdout
    try:
        fd = original.fileno()
        original.flush()
    except (AttributeError, OSError, ValueError):  # no descriptor (io.UnsupportedOperation), or closed
        yield
        return
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_Guard(fd)),
        encoding=original.encoding,
        errors=original.errors,
        line_buffering=bool(original.line_buffering),
    )
    try:
        yield
    finally:
        sys.stdout = original
