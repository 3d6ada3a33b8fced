"""Standard output that says when it fails (``StdoutFailed``), and how a command ends when it does.

A full disk is ENOSPC for the ledger too, and a failed flush discards its buffer (so
trying stdout again proves nothing): the error must carry where it came from. For the
duration of a command ``sys.stdout`` writes through ``_Guard``, a raw stream over the
same descriptor built from the ``io`` module's documented classes, and click's
``echo`` writes to it like to any text stream.

Click-free, so that the quick front door (``cli.quick``) and the click command line
end the same way (``ending``): a reader gone (EPIPE) is the shell's SIGPIPE status,
Ctrl-C is SIGINT's, an error is one ``Error:`` line.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from portalloc import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NoReturn

    from _typeshed import ReadableBuffer

    from portalloc.errors import PortallocError


#: What a shell reports for a process that SIGPIPE ended (128 + 13), as ``yes | head -1`` gives.
SIGPIPE_STATUS = 141
#: What a shell reports for a process that Ctrl-C (SIGINT) ended (128 + 2).
SIGINT_STATUS = 130


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


#: What the ``Error:`` line says when there is no standard output at all (``>&-``: ``sys.stdout`` is ``None``).
STDOUT_CLOSED = "cannot write to standard output: it is closed"


def ending(error: PortallocError | OSError | UnicodeEncodeError, *, on_stdout: bool = False) -> tuple[str, int]:
    """How a command ends on ``error``: what its ``Error:`` line says, and the exit status.

    A reader gone (EPIPE) ends the process here, quietly, with the SIGPIPE status.
    Standard output failing (its own ``StdoutFailed``, or any OS error where ``on_stdout``
    says the error came from writing it) or unable to show the text is silenced first, so
    that the interpreter's final flush cannot fail a second time.
    """
    if isinstance(error, UnicodeEncodeError):
        quiet_stdout()
        bad = error.object[error.start : error.end]
        return f"cannot write to standard output: its encoding ({error.encoding}) cannot show {bad!r}", 1
    if isinstance(error, OSError):
        if error.errno == errno.EPIPE:
            quiet_exit(SIGPIPE_STATUS)
        if on_stdout or isinstance(error, StdoutFailed):
            quiet_stdout()
            return f"cannot write to standard output: {error.strerror or error}", 1
        return f"{error.strerror or error}: {error.filename}" if error.filename else str(error), 1
    return str(error), error.exit_code


def quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail a second time."""
    with suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def quiet_exit(code: int) -> NoReturn:
    """Exit with ``code``, stdout silenced first (``quiet_stdout``)."""
    quiet_stdout()
    sys.exit(code)


def interrupted() -> NoReturn:
    """Exit as Ctrl-C leaves a command: the user's own choice, not an error, so no message."""
    quiet_exit(SIGINT_STATUS)
