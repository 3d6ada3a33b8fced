"""Whole-file rewrites of a ledger: the git merge driver, ``repair`` and ``fmt``.

Storage (``codec.py``, ``ledger.py``) plus the pure merge (``merge.py``); no printing or exiting.
Every function parses every input fully before writing anything, so a file that is
not a valid ledger is never written, and every write is ``files.atomic_write`` of the
canonical bytes (``codec.dump_ledger``); ``repair`` and ``fmt`` go through
``LedgerFile.update``, the one locked read-modify-write path, and take the lock only
when they write: ``check``, ``fmt --check`` and a ``repair``/``fmt`` with nothing to do
leave no ``<ledger>.lock`` for ``git add -A`` to commit.
"""

from __future__ import annotations

from pathlib import Path

from portalloc.core.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.core.merge import PLAIN_SIDES, Move, Sides, merge_ledgers, repair_ledger
from portalloc.core.models import Ledger
from portalloc.errors import LedgerUnavailable
from portalloc.storage.codec import dump_ledger, is_canonical, parse_ledger
from portalloc.storage.files import atomic_write
from portalloc.storage.ledger import LedgerFile
from portalloc.storage.ledgerdir import read_bytes


def _existing_bytes(path: Path) -> bytes:
    data = read_bytes(path)
    if data is None:
        raise LedgerUnavailable(f"there is no ledger at {path}")
    return data


def _read_existing(path: Path) -> tuple[bytes, Ledger]:
    data = _existing_bytes(path)
    return data, parse_ledger(data, path)


def merge_files(
    base: Path,
    ours: Path,
    theirs: Path,
    sides: Sides | None = None,
    *,
    live: bool = False,
    keep_theirs: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> list[Move]:
    """Merge three versions of a ledger and write the result over ``ours`` (git's ``%O %A %B``).

    An empty or missing ``base`` means the sides share no version (git passes an empty
    file when both branches added the ledger): nothing counts as released then, and the
    sides' policy is used. ``ours`` and ``theirs`` must be valid ledgers with the same
    policy; otherwise this raises and ``ours`` is left as it was. ``sides`` names the
    three versions in messages and errors (under git, whose temp file names mean nothing
    to a user); without it, errors name the files and moves say "ours" and "theirs".
    With ``live``, ``ours`` is a ledger that others may be writing: the merge is redone
    on it under its lock (``LedgerFile.update``), so an allocation made meanwhile is
    kept. Returns the moves.
    """
    names = sides or Sides(str(ours), str(theirs), str(base))
    sides = sides or PLAIN_SIDES
    theirs_ledger = parse_ledger(_existing_bytes(theirs), names.theirs)
    base_data = read_bytes(base)
    base_ledger = parse_ledger(base_data, names.base) if base_data is not None and base_data.strip() else None
    ours_ledger = parse_ledger(_existing_bytes(ours), names.ours)
    # Merged once before any lock is made, so that a bad side or a policy mismatch never
    # leaves a lock file beside OURS; with ``live`` it is redone on the file under the lock.
    resolution = merge_ledgers(base_ledger, ours_ledger, theirs_ledger, sides, keep_theirs=keep_theirs)
    if not live:
        atomic_write(ours, dump_ledger(resolution.ledger))
        return resolution.moves

    def change(current: Ledger) -> tuple[Ledger, list[Move]]:
        resolution = merge_ledgers(base_ledger, current, theirs_ledger, sides, keep_theirs=keep_theirs)
        return resolution.ledger, resolution.moves

    return LedgerFile(ours, lock_timeout).update(change)


def repair_file(path: Path, *, dry_run: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> list[Move]:
    """Rewrite the ledger at ``path`` without conflicts (see ``merge.repair_ledger``); return the moves.

    The file is read and validated first without a lock; only when there is something
    to repair (and not ``dry_run``) is the lock taken and the repair redone under it.
    So a clean ledger, or a dry run, never creates a lock file. A ledger with nothing
    to repair is not rewritten, canonical or not (that is ``fmt``'s job).
    """
    moves = repair_ledger(_read_existing(path)[1]).moves
    if dry_run or not moves:
        return moves

    def change(ledger: Ledger) -> tuple[Ledger, list[Move]]:
        resolution = repair_ledger(ledger)  # the same object back when there is nothing to repair
        return resolution.ledger, resolution.moves

    return LedgerFile(path, lock_timeout, create_missing=False).update(change)


def format_file(path: Path, *, check: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> bool:
    """Rewrite the ledger at ``path`` in canonical bytes; ``True`` if it was not canonical.

    With ``check`` nothing is written. Canonical means ``dump_ledger`` of the parsed
    file (rows sorted by ``(model, app_num)``, one per line, the policy spelled out),
    with CRLF line ends allowed (``is_canonical``). As with ``repair``, the lock is
    taken only to write, so a canonical ledger never gets a lock file beside it.
    """
    data, ledger = _read_existing(path)
    if check or is_canonical(data, ledger):
        return not is_canonical(data, ledger)

    def change(current: Ledger) -> tuple[Ledger, bool]:
        # Under the lock the file cannot change, so these are the bytes ``current`` came from.
        data = read_bytes(path)
        was_canonical = data is not None and is_canonical(data, current)
        if was_canonical:
            return current, False  # another fmt got here first
        # A new (equal) ledger object makes ``update`` write its canonical bytes.
        return current.with_allocations(current.allocations), True

    return LedgerFile(path, lock_timeout, create_missing=False).update(change)
