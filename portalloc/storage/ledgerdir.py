"""The ledger's directory: opened once, read without a lock, and what the OS says when it cannot be
turned into one ``LedgerUnavailable`` line. ``ledger.py`` writes through the same directory.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from portalloc.core.limits import MAX_LEDGER_BYTES
from portalloc.errors import LedgerUnavailable
from portalloc.storage.files import FileDirectory, RegularFile


def unavailable(action: str, path: Path | str, error: OSError) -> LedgerUnavailable:
    """``error``, met while trying to ``action`` the ledger at ``path``, as one clear ``LedgerUnavailable``."""
    if error.errno == errno.ENOENT:
        # Name the directory that is really missing: through a symlink it is the target's.
        directory = Path(os.path.realpath(path)).parent
        via = f" (a symlink to {os.path.realpath(path)})" if os.path.islink(path) else ""
        return LedgerUnavailable(f"cannot {action} {path}{via}: the directory {directory} does not exist")
    if error.errno == errno.ENOTDIR:
        return LedgerUnavailable(f"cannot {action} {path}: {Path(os.path.realpath(path)).parent} is not a directory")
    return LedgerUnavailable(f"cannot {action} {path}: {error.strerror or error}")


def open_directory(path: Path | str, action: str) -> FileDirectory:
    """The ledger's directory, opened once (``LedgerUnavailable`` naming ``action`` if it cannot be)."""
    try:
        return FileDirectory(path)
    except OSError as error:
        raise unavailable(action, path, error) from None


def read_in(directory: FileDirectory, what: str = "ledger", limit: int = MAX_LEDGER_BYTES) -> RegularFile | None:
    """The regular file ``directory`` names, read whole, ``None`` if there is none."""
    try:
        return directory.read(what, limit)
    except OSError as error:
        raise unavailable("read", directory.path, error) from None


def read_bytes(path: Path, what: str = "ledger", limit: int = MAX_LEDGER_BYTES) -> bytes | None:
    """The bytes of the ledger (or of another file portalloc rewrites, named ``what``), ``None`` if there is none.

    Its directory must exist. Only a regular file of at most ``limit`` bytes is read
    (``UnsafeFile`` otherwise).
    """
    with open_directory(path, "read") as directory:
        found = read_in(directory, what, limit)
    return None if found is None else found.data
