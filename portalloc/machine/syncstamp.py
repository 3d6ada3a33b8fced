"""Which version of a ledger file this machine's host leases last took in: a small stamp per ledger file.

A read leases the rows of a ledger that changed since its rows were last leased here
(``service.readsync``): rows that arrived by ``git pull`` or a checkout without the
hooks. "Changed" must cost next to nothing on the hottest read there is, ``get`` of a
key the ledger holds (no pydantic, no ``sqlite3``), so it is a stamp file in the state
directory, not a row in the store: ``<state>/synced/<hash of the ledger's real path>``
holding the ledger file's signature (device, inode, size, mtime and ctime in ns: git
and every portalloc write replace the file, so a new version has a new inode), the
store file's device and inode (a store deleted or replaced has taken in nothing), and
the ledger's real path (a hash collision then reads as "changed", never as "synced").

Never an error: a stamp that cannot be read is "changed" (the read leases the rows
again), and one that cannot be written is simply not there next time. A machine with no
store yet has nothing to sync into: reads never create the store.
"""

from __future__ import annotations

import os
import zlib
from contextlib import suppress
from pathlib import Path

from portalloc.machine import statedir

#: The stamps' directory in the state directory.
STAMPS = "synced"
_FORMAT = "portalloc-synced 1"


def signature(path: Path | str) -> str | None:
    """The signature of the file at ``path`` now, or ``None`` when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _stamp(directory: Path | None, ledger: Path | str, real: str | None = None) -> tuple[str, str] | None:
    """Where the stamp of the ledger at ``ledger`` (``real``: its real path, when known) lives, in the state
    ``directory`` (default this user's), and what it says when current but for the ledger's signature;
    ``None`` when there is no store."""
    if directory is None:
        if not statedir.placeable():
            return None
        directory = statedir.state_dir()
    try:
        store = os.stat(os.path.join(directory, statedir.STORE_NAME))
    except OSError:
        return None  # no store yet: nothing has been leased, so nothing is current
    real = os.path.realpath(ledger) if real is None else real
    data = real.encode("utf-8", "surrogateescape")
    name = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
    return os.path.join(directory, STAMPS, name), f"{_FORMAT}\n{store.st_dev}:{store.st_ino}\n{real}\n"


def stale(directory: Path | None, ledger: Path | str, seen: str) -> bool:
    """Whether the store in the state ``directory`` (``None``: this user's) has not taken in the ledger at
    ``ledger`` as it was when its signature was ``seen``. ``False`` when there is no store (nor anywhere to
    put one): nothing is leased here yet, and the first write makes the store and leases its own rows."""
    where = _stamp(directory, ledger)
    if where is None:
        return False
    try:
        with open(where[0], "rb") as file:
            expected = _content(where[1], seen)
            return expected is None or file.read(_SIZE + 1) != expected
    except OSError:
        return True


def record(directory: Path | None, ledger: Path | str, seen: str, *, real: Path | str | None = None) -> None:
    """Say that the store in the state ``directory`` (``None``: this user's) took in the ledger at ``ledger``
    as it was when its signature was ``seen``. ``real``: the ledger's real path, if the caller resolved it
    (a writer has; a symlink changed since can only make the stamp miss, never match a file it was not for).

    Written in place, at a fixed length, without a rename: every write of the ledger
    records one, and a rename costs a hundred times more. A reader that meets a stamp
    half written sees a mismatch and syncs: a torn stamp can only cost work.
    """
    where = _stamp(directory, ledger, None if real is None else os.fspath(real))
    if where is None:
        return
    path, prefix = where
    data = _content(prefix, seen)
    if data is None:
        return
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    with suppress(OSError):
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:  # the first stamp of this state directory: make the stamps' directory
            with suppress(FileExistsError):
                os.mkdir(os.path.dirname(path), 0o700)
            fd = os.open(path, flags, 0o600)
        try:
            os.pwrite(fd, data, 0)
            if os.fstat(fd).st_size > len(data):  # a longer stamp was there (another path with the same hash)
                os.ftruncate(fd, len(data))
        finally:
            os.close(fd)


#: Every stamp's length: the prefix (with a path of up to 4,096 bytes) and the signature, padded.
_SIZE = 4608


def _content(prefix: str, seen: str) -> bytes | None:
    """What the stamp holds: ``prefix`` (format, store, ledger path) and the signature, padded to one
    length; ``None`` when they do not fit (such a ledger is synced by every read, never wrongly skipped)."""
    data = (prefix + seen + "\n").encode("utf-8", "surrogateescape")
    return None if len(data) > _SIZE else data.ljust(_SIZE, b" ")
