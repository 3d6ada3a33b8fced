"""Reading a file that is what it claims to be: a regular file of bounded size.

Every file portalloc reads (ledger, pre-configuration, compose file, ``.env``) comes
through ``read_regular_file``: a FIFO would block the reader forever, ``/dev/zero``
would fill memory, and a ``.env`` that is ``/dev/null`` must not be "rewritten" into a
regular file. The file is opened without blocking and checked on the open descriptor,
so what is checked is what is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

from portalloc.errors import UnsafeFile

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class RegularFile(NamedTuple):
    """The bytes of a regular file and the ``fstat`` of the descriptor they were read from."""

    data: bytes
    stat: os.stat_result


def read_regular_file(path: Path | str, what: str, limit: int, *, dir_fd: int | None = None) -> RegularFile:
    """Read ``path`` (relative to ``dir_fd`` if given) if it is a regular file of at most ``limit`` bytes.

    ``what`` names the file in messages ("ledger", "compose file"). Raises ``UnsafeFile``
    for anything that is not a regular file or is larger than ``limit``; ``OSError``
    (``FileNotFoundError`` included) passes through for the caller to word, since a
    missing file means different things to different callers.
    """
    fd = os.open(path, _READ_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{what} {path} is not a regular file ({_kind(info.st_mode)}); refusing to read it")
        if info.st_size > limit:
            raise UnsafeFile(f"{what} {path} is {info.st_size:,} bytes; the limit is {limit:,}")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may grow after fstat: read at most limit + 1 bytes
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnsafeFile(f"{what} {path} is more than {limit:,} bytes; the limit is {limit:,}")
        return RegularFile(b"".join(chunks), info)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"
