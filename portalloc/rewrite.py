"""Whole-file rewrites of a ledger: the git merge driver, ``repair`` and ``fmt``.

Storage (``ledger.py``) plus the pure merge (``merge.py``); no printing or exiting.
Every function parses every input fully before writing anything, so a file that is
not a valid ledger is never written, and every write is ``files.atomic_write`` of the
canonical bytes (``ledger.dump_ledger``); ``repair`` and ``fmt`` go through
``LedgerFile.update``, the one locked read-modify-write path.
"""

from __future__ import annotations

from pathlib import Path

from portalloc.errors import LedgerUnavailable
from portalloc.files import atomic_write
from portalloc.ledger import LedgerFile, dump_ledger, parse_ledger, read_bytes
from portalloc.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.merge import Move, merge_ledgers, repair_ledger
from portalloc.models import Ledger


def _existing_bytes(path: Path) -> bytes:
    data = read_bytes(path)
    if data is None:
        raise LedgerUnavailable(f"there is no ledger at {path}")
    return data


def _read_existing(path: Path) -> tuple[bytes, Ledger]:
    data = _existing_bytes(path)
    return data, parse_ledger(data, path)


def merge_files(base: Path, ours: Path, theirs: Path) -> list[Move]:
    """Merge three versions of a ledger and write the result over ``ours`` (git's ``%O %A %B``).

    An empty or missing ``base`` means the sides share no version (git passes an empty
    file when both branches added the ledger): nothing counts as released then, and the
    sides' policy is used. ``ours`` and ``theirs`` must be valid ledgers with the same
    policy; otherwise this raises and ``ours`` is left as it was. Returns the moves.
    """
    ours_ledger = parse_ledger(_existing_bytes(ours), ours)
    theirs_ledger = parse_ledger(_existing_bytes(theirs), theirs)
    base_data = read_bytes(base)
    base_ledger = parse_ledger(base_data, base) if base_data is not None and base_data.strip() else None
    resolution = merge_ledgers(base_ledger, ours_ledger, theirs_ledger)
    atomic_write(ours, dump_ledger(resolution.ledger))
    return resolution.moves


def repair_file(path: Path, *, dry_run: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> list[Move]:
    """Rewrite the ledger at ``path`` without conflicts (see ``merge.repair_ledger``); return the moves.

    With ``dry_run`` nothing is written (and no lock is taken: reads never need one).
    A ledger with nothing to repair is not rewritten, canonical or not (that is ``fmt``'s job).
    """
    if dry_run:
        return repair_ledger(_read_existing(path)[1]).moves
    _existing_bytes(path)  # a missing ledger is an error here, not a new empty one

    def change(ledger: Ledger) -> tuple[Ledger, list[Move]]:
        resolution = repair_ledger(ledger)  # the same object back when there is nothing to repair
        return resolution.ledger, resolution.moves

    return LedgerFile(path, lock_timeout, create_missing=False).update(change)


def format_file(path: Path, *, check: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> bool:
    """Rewrite the ledger at ``path`` in canonical bytes; ``True`` if it was not canonical.

    With ``check`` nothing is written. Canonical means ``dump_ledger`` of the parsed
    file: rows sorted by ``(model, app_num)``, one per line, the policy spelled out.
    """
    if check:
        data, ledger = _read_existing(path)
        return dump_ledger(ledger) != data
    _existing_bytes(path)

    def change(ledger: Ledger) -> tuple[Ledger, bool]:
        # Under the lock the file cannot change, so these are the bytes ``ledger`` came from.
        was_canonical = dump_ledger(ledger) == read_bytes(path)
        # A new (equal) ledger object makes ``update`` write its canonical bytes if they differ.
        return ledger.with_allocations(ledger.allocations), not was_canonical

    return LedgerFile(path, lock_timeout, create_missing=False).update(change)
