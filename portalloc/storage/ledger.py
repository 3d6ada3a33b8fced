"""How the ledger file is read, locked and written safely. No allocation logic, and no layout:
its bytes are the codec's (``codec.py``).

* Reads take no lock: every write replaces the file by a rename, so a reader sees the
  old file or the new one, never half of one. Only regular files of bounded size are
  read (``files.read_regular_file``).
* Every read-modify-write resolves the path once and works through the open directory
  (``files.FileDirectory``): it validates the file *before* locking (no ``.lock`` is
  created beside a file that is not a ledger), holds ``<ledger>.lock``
  (``locking.acquire``), re-reads the file under the lock, and writes a temp file in
  that directory (fsync, mode and owner set on the descriptor) that it renames over
  the ledger. Right before the rename it checks that its lock file and the ledger are
  still the inodes it locked and read; if either changed (``git clean`` removed the
  lock, git or a stray writer replaced the ledger) it redoes the whole
  read-modify-write under a fresh lock.
* A file that is not a valid ledger is never overwritten, and a ledger is never
  started afresh where one existed: a ledger missing or unparseable under the lock
  while git rewrites the work tree, or after this ``LedgerFile`` saw it exist, is
  waited for (within the lock timeout), then an error.
* A new ledger is created on purpose (``LedgerFile.create``), or by a write whose
  ``LedgerFile`` may create (``create_missing``); either way by an exclusive link, so
  it never replaces a file that appeared meanwhile.
* A temp file left by a writer that was killed mid-write is removed by the next write
  once its pid is gone (``files.remove_stale_temps``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Literal, TypeVar, cast, overload

from portalloc.core.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.errors import LedgerCorrupt, LedgerExists, LedgerLocked, LedgerMissing, LedgerUnavailable
from portalloc.storage.codec import LineCache, dump_ledger, parse_known_rows, parse_ledger
from portalloc.storage.files import FileDirectory, RegularFile, same_file
from portalloc.storage.ledgerdir import open_directory, read_in, unavailable
from portalloc.storage.paths import git_operation
from portalloc.storage.plainread import read_plain

if TYPE_CHECKING:
    from portalloc.core.models import Ledger
    from portalloc.core.shapes import LedgerShape
    from portalloc.storage import locking  # imported when a write takes the lock: a read never needs filelock

T = TypeVar("T")
L = TypeVar("L", bound="LedgerShape")  # what a LedgerFile reads: a Ledger, or (plain) a LedgerShape


class _Snapshot(Generic[L]):
    """A version of the file as read: its signature, its bytes (``None``: no file) and what they hold.

    A plain class: a dataclass costs about 1 ms to define, at every write's start.
    """

    __slots__ = ("data", "ledger", "signature")

    def __init__(self, signature: tuple[int, ...], data: bytes | None, ledger: L) -> None:
        self.signature, self.data, self.ledger = signature, data, ledger


class _Changed(Exception):
    """Raised right before the rename when the lock or the ledger is no longer what was locked and read."""


#: Read-modify-writes redone under a fresh lock (the lock file was removed, or the
#: ledger replaced by someone who did not hold the lock) before giving up.
_REDO_LIMIT = 5
#: How often a writer looks again at a ledger that git is rewriting.
_SETTLE_INTERVAL = 0.01
#: How long a ledger with a second name may be a ``create`` in progress before it counts as hard-linked.
_LINK_GRACE = 0.2


class LedgerFile(Generic[L]):
    """One ledger on disk: cached lock-free reads and locked read-modify-write updates.

    A read re-parses the file only when it changed (by inode, size and mtime), so
    repeated lookups cost a ``stat``. ``update`` always re-reads the bytes under the lock.
    ``create_missing`` says whether ``update`` may start a new ledger where there is no
    file (the API's zero-configuration default); if not, it raises ``LedgerMissing``.
    """

    @overload
    def __init__(
        self: LedgerFile[Ledger],
        path: Path | str,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        new_ledger: Ledger | None = None,
        *,
        create_missing: bool = True,
    ) -> None: ...

    @overload
    def __init__(  # plain: plain classes where it can (storage.plainread), else a Ledger; the default new ledger
        self: LedgerFile[LedgerShape],
        path: Path | str,
        lock_timeout: float,
        *,
        create_missing: bool,
        plain: Literal[True],
    ) -> None: ...

    def __init__(
        self,
        path: Path | str,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        new_ledger: LedgerShape | None = None,
        *,
        create_missing: bool = True,
        plain: bool = False,
    ) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._new_ledger = cast("L | None", new_ledger)
        self.create_missing = create_missing
        self.plain = plain
        self._snapshot: _Snapshot[L] | None = None
        self._lines = LineCache()
        #: Once the ledger has been seen, its absence is never read as "a new ledger".
        self._seen = False
        #: The file's real path as the last write resolved it (``None`` before one): who records the write uses it.
        self.written_through: Path | None = None
        #: Released locks whose ``FileLock`` the next update takes again (see ``locking.acquire``);
        #: one per thread that updates at once, at most.
        self._spare_locks: list[locking.HeldLock] = []

    def _signature(self) -> tuple[int, ...]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return ()
        except OSError as error:
            raise unavailable("read", self.path, error) from None
        return _signature_of(st)

    @property
    def new_ledger(self) -> L:
        """What a missing file reads as (its policy is the one a new ledger gets)."""
        # Built when first asked for: validating even an empty Ledger builds the models'
        # validators, which a write to an existing file never needs (``codec._built``).
        if self._new_ledger is None:
            self._new_ledger = self._parsed(None)
        return self._new_ledger

    def _parsed(self, data: bytes | None) -> L:
        """``data`` (``None``: no file) as this file reads it: plain classes where it may (``plain``), else models."""
        if self.plain:
            ledger: LedgerShape | None = read_plain(data, self.path, self._lines)
        elif data is None:
            from portalloc.core.models import Ledger

            ledger = Ledger()
        else:  # usually another writer added a row or two: validate just those
            known = self._snapshot
            ledger = None if known is None else parse_known_rows(data, cast("Ledger", known.ledger), self._lines)
            ledger = ledger or parse_ledger(data, self.path)
        return cast("L", ledger)  # the overloads of __init__ tie L to ``plain``

    def _load(self, data: bytes | None) -> L:
        snapshot = self._snapshot
        if snapshot is not None and snapshot.data == data:
            return snapshot.ledger
        return self.new_ledger if data is None else self._parsed(data)

    def missing(self) -> LedgerMissing:
        """The error for a ledger that is not there where it must be: it names ``portalloc init``."""
        return LedgerMissing(
            f"there is no ledger at {self.path}; create one with `portalloc init {self.path}` "
            "(a write starts one by itself only at the root of the git repository)"
        )

    def read(self) -> L:
        """The ledger as it is now (an empty one with the new-ledger policy if there is no file).

        Where this ``LedgerFile`` may not create a ledger (``create_missing`` is false), a
        missing file is ``LedgerMissing`` instead: a mistyped ``--ledger`` must not read as
        "nothing allocated" (and be exported as ``[]``). An unparseable file is read again,
        within the lock timeout, while a git operation runs in its repository (git may be
        writing it); then ``LedgerCorrupt``.
        """
        snapshot = self._snapshot
        if snapshot is not None and snapshot.signature and snapshot.signature == self._signature():
            return snapshot.ledger
        with open_directory(self.path, "read") as directory:
            found, ledger = self._settled(directory, time.monotonic() + self.lock_timeout, writing=False)
        self._seen = self._seen or found is not None
        # The signature of what was read, not of what is there now: a change made meanwhile is read next time.
        self._snapshot = _Snapshot(
            () if found is None else _signature_of(found.stat), None if found is None else found.data, ledger
        )
        return ledger

    def create(self, ledger: LedgerShape) -> None:
        """Write ``ledger`` as a new file; raise ``LedgerExists`` if there is a file at the path already.

        Atomic and exclusive: the complete file appears under its name by a hard link
        (``os.link`` fails if the name exists), so a file that appeared meanwhile is never replaced.
        """
        with open_directory(self.path, "create") as directory:
            try:
                directory.write(dump_ledger(ledger), like=None, exclusive=True)
            except FileExistsError:
                raise LedgerExists(
                    f"{self.path} already exists; it was left as it was ('portalloc policy set' changes its policy)"
                ) from None
            except OSError as error:
                raise unavailable("create", self.path, error) from None
        self._seen = True

    def update(self, change: Callable[[L], tuple[L, T]]) -> T:
        """Under the lock: re-read, apply ``change``, write the result if it differs.

        ``change`` returns ``(new_ledger, result)``; ``result`` is returned. If ``change``
        raises, nothing is written. ``change`` may run more than once (see below), so it
        must not act on the world beyond what it returns.

        Why redo rather than trust the lock: a lock is only as good as its file. If
        ``<ledger>.lock`` was removed while we held it (``git clean -fdX`` removes
        ignored ``*.lock``), another writer can lock a new file and write meanwhile;
        and a ledger replaced under our lock (git, a symlink swapped in) is not what we
        read. Either is seen right before the rename, by inode; the temp file is then
        dropped and the whole read-modify-write is done again under a fresh lock, at
        most ``_REDO_LIMIT`` times. The one window left is the few microseconds
        between that check and the rename, and only when the lock file is deleted
        then; a second writer that read before our rename sees our rename as a
        replaced ledger at its own check, and redoes.
        """
        deadline = time.monotonic() + self.lock_timeout
        with open_directory(self.path, "write") as directory:
            if not self._fresh():
                self._settled(directory, deadline)  # validate before locking: no .lock beside a non-ledger
            for _ in range(_REDO_LIMIT):
                held = self._lock(directory, deadline)
                written = False
                try:
                    found, current = self._settled(directory, deadline)
                    data = None if found is None else found.data
                    new, result = change(current)
                    if new is not current:
                        new_data = self._lines.dump(new)
                        if new_data != data:
                            self._write(directory, new_data, found, held)
                            data, written, self.written_through = new_data, True, directory.real
                    self._seen = self._seen or data is not None
                    self._snapshot = _Snapshot(self._signature(), data, new)
                except _Changed:
                    continue
                finally:
                    held.release()
                    self._spare_locks.append(held)
                if written:
                    # The directory fsync that makes the rename durable runs after the lock is
                    # released, so the next writer need not wait for it, but before this call
                    # returns, so every allocation it returns is on disk. Order is kept: a later
                    # writer read this file under the lock, so its file holds these rows too, and
                    # until this fsync returns nobody has been told they exist (a lock-free reader
                    # could always see a rename before its directory fsync).
                    directory.sync()
                return result
        from portalloc.storage.locking import lock_path

        raise LedgerLocked(
            f"the lock file {lock_path(self.path)} or the ledger {self.path} was replaced {_REDO_LIMIT} times "
            "while a write held the lock; nothing was written (is something deleting the lock, "
            "such as `git clean -X` in a loop?)"
        )

    def _lock(self, directory: FileDirectory, deadline: float) -> locking.HeldLock:
        try:
            spare = self._spare_locks.pop()  # atomic: two threads never take the same one
        except IndexError:
            spare = None
        from portalloc.storage import locking

        return locking.acquire(directory, self.lock_timeout, deadline=deadline, reuse=spare)

    def _fresh(self) -> bool:
        # The file is the one this object last read and validated (one stat): skip the pre-lock read.
        # A hard-linked one (last field, st_nlink) is refused there, before any lock file is made.
        snapshot = self._snapshot
        signature = self._signature()
        fresh = snapshot is not None and snapshot.data is not None and snapshot.signature == signature
        return fresh and signature[-1] == 1

    def _write(self, directory: FileDirectory, data: bytes, found: RegularFile | None, held: locking.HeldLock) -> None:
        def still_what_was_read() -> None:
            now = directory.lstat()
            unchanged = now is None if found is None else now is not None and same_file(now, found.stat)
            if not (unchanged and held.still_current()):
                raise _Changed

        try:
            # A new ledger appears by an exclusive link: a file git (or anyone) created meanwhile is kept.
            directory.write(
                data,
                like=None if found is None else found.stat,
                exclusive=found is None,
                before_commit=still_what_was_read,
                sync_directory=False,  # see update: after the lock is released
            )
        except FileExistsError:
            raise _Changed from None
        except OSError as error:
            raise unavailable("write", self.path, error) from None

    def _settled(
        self, directory: FileDirectory, deadline: float, *, writing: bool = True
    ) -> tuple[RegularFile | None, L]:
        """The ledger file and what it holds, once it is there and valid; ``(None, new ledger)`` if there is none.

        The one place that waits while git rewrites the ledger: git replaces a work-tree
        file by unlink, create, write, so for a moment the ledger is missing, empty or
        half there. A missing or unparseable file is read again (until ``deadline``) while
        a git operation runs in its repository; a writer waits too once this object has
        seen the ledger exist, since a writer that took that moment for "no ledger" would
        start over from nothing and hand out ports the ledger holds. A reader that may
        create (``create_missing``) reads a missing file as a new ledger at once. A
        writer refuses a hard-linked ledger (each of its names would get its own lock).
        """
        linked_until = time.monotonic() + _LINK_GRACE
        while True:
            found = read_in(directory)
            if found is not None and writing and found.stat.st_nlink > 1:
                # ``create`` links a complete temp file to the name, then unlinks the temp: for a
                # moment a new ledger has two names. A second name that stays is a real hard link.
                if time.monotonic() >= min(linked_until, deadline):
                    raise LedgerUnavailable(
                        f"{self.path} has {found.stat.st_nlink} hard links; portalloc does not write a hard-linked "
                        "ledger, since each name would get its own lock (use a symlink instead)"
                    )
            elif found is not None:
                try:
                    return found, self._load(found.data)
                except LedgerCorrupt:
                    if time.monotonic() >= deadline:
                        raise
                    if not ((writing and self._seen) or _git_busy(directory) or _changed_since(directory, found)):
                        raise
            else:
                busy = _git_busy(directory) if writing or not self.create_missing else None
                if busy is None and not (writing and self._seen):
                    if self.create_missing:  # created by an exclusive link: never over a file that appears
                        return None, self.new_ledger
                    if not _changed_since(directory, None):
                        raise self.missing()
                    # It appeared meanwhile: read again after the pause (within the deadline: a file that
                    # keeps coming and going must not keep this loop spinning).
                if time.monotonic() >= deadline:
                    raise self._gone(busy) if writing else self.missing()
            time.sleep(_SETTLE_INTERVAL)

    def _gone(self, busy: str | None) -> LedgerUnavailable:
        why = f"while git runs in its repository ({busy} exists)" if busy else "after it was read"
        return LedgerUnavailable(
            f"the ledger {self.path} disappeared {why} and did not come back within "
            f"{self.lock_timeout:g}s; nothing was written (portalloc never starts a new ledger "
            "where one existed)"
        )


def _changed_since(directory: FileDirectory, found: RegularFile | None) -> bool:
    """Whether the ledger is no longer what was read (``found``; ``None``: missing). A read that met it missing
    or half there and then no git operation running looks again: git may have finished in between."""
    now = read_in(directory)
    return now is not None if found is None else now is None or now.data != found.data


def _git_busy(directory: FileDirectory) -> str | None:
    """The marker of a git operation running in the repository of ``directory``'s file, or ``None``."""
    return git_operation(directory.real.parent)


def _signature_of(st: os.stat_result) -> tuple[int, ...]:
    """What tells one version of the file from another without reading it (nlink last: see ``_fresh``)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink)
