"""The ledger's cross-process lock: a ``filelock.FileLock`` on the sidecar ``<ledger>.lock``, checked by inode.

filelock opens the lock file without following a symlink and without truncating it
(a ``.lock`` that links to ``/etc/passwd`` is refused, not locked), and hands the
descriptor it locked to ``on_acquired``; that is where this module records which
inode it holds. ``git clean -fdX`` deletes ignored ``*.lock`` files, and a lock on a
deleted inode excludes nobody: the next writer creates a new file and locks that. So
``HeldLock.still_current`` compares the held inode with the one the name has now,
and the ledger redoes its read-modify-write under a new lock when they differ (see
``LedgerFile.update``). The inode cannot be reused while it is held: the held
descriptor keeps it alive.

The kernel drops the lock of a process that dies, so a crash never leaves the ledger
locked. A timeout names the holder when ``/proc/locks`` shows it.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

from filelock import FileLock, Timeout

from portalloc.errors import LedgerLocked, LedgerUnavailable, UnsafeFile
from portalloc.storage.files import FileDirectory, same_file

LOCK_SUFFIX = ".lock"
#: How often a writer waiting for the lock tries again. A write holds it about 1 ms,
#: so filelock's default of 50 ms would leave the ledger idle most of the time.
POLL_INTERVAL = 0.001


def lock_name(name: str) -> str:
    """The name of the lock file of the file named ``name``: ``<name>.lock``, in the same directory."""
    return name + LOCK_SUFFIX


def lock_path(path: Path | str) -> Path:
    """The sidecar lock file: ``<ledger>.lock`` beside the real file (symlinks resolved)."""
    target = Path(os.path.realpath(path))
    return target.with_name(lock_name(target.name))


class HeldLock:
    """A held ``FileLock`` on ``<name>.lock`` in an open directory, and the inode it holds; ``release`` it."""

    def __init__(self, directory: FileDirectory, lock: FileLock, seen: list[os.stat_result]) -> None:
        self.directory = directory
        self.name = lock_name(directory.name)
        self.lock = lock
        #: What ``on_acquired`` recorded, one ``fstat`` per acquire; the last is the inode held now.
        self.seen = seen
        self.identity = seen[-1]

    @property
    def path(self) -> Path:
        """The lock file's path, for messages."""
        return self.directory.real.with_name(self.name)

    def still_current(self) -> bool:
        """Whether ``<name>.lock`` is still the inode this lock holds (``git clean`` may have removed it)."""
        now = self.directory.lstat(self.name)
        return now is not None and same_file(now, self.identity)

    def release(self) -> None:
        """Unlock (filelock closes the descriptor)."""
        self.lock.release()


def acquire(
    directory: FileDirectory, timeout: float, *, deadline: float | None = None, reuse: HeldLock | None = None
) -> HeldLock:
    """Lock ``directory``'s file, waiting at most ``timeout`` seconds; raise ``LedgerLocked`` after that.

    ``deadline`` (a ``time.monotonic()`` value) ends the wait sooner, for a caller that
    spends one timeout on several steps. A lock taken on a file that was removed or
    replaced meanwhile is dropped and taken again on the file that the name now holds.
    ``reuse`` is an earlier, released ``HeldLock`` of the same path whose ``FileLock`` is
    taken again rather than built anew: filelock opens the lock file on every acquire and
    ``on_acquired`` records its inode each time, so the checks are the same. One of
    another path, or still locked, is not reused.
    """
    path = directory.real.with_name(lock_name(directory.name))  # ``lock_path``, the directory already resolved
    deadline = time.monotonic() + timeout if deadline is None else deadline
    if reuse is not None and reuse.lock.lock_file == str(path) and not reuse.lock.is_locked:
        lock, held = reuse.lock, reuse.seen
        held.clear()
    else:
        held = []
        lock = FileLock(path, poll_interval=POLL_INTERVAL, on_acquired=lambda fd: held.append(_regular(fd, path)))
    while True:
        try:
            lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        except Timeout:
            raise _timeout(path, timeout) from None
        except UnsafeFile:
            raise
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise UnsafeFile(f"lock file {path} is a symlink; refusing to lock through it") from None
            raise LedgerUnavailable(f"cannot lock {path}: {error.strerror or error}") from None
        current = HeldLock(directory, lock, held)
        if current.still_current():
            return current
        current.release()  # we locked a file that is gone from its name: lock the one there now
        if time.monotonic() >= deadline:
            raise LedgerLocked(f"could not lock {path} within {timeout:g}s: the lock file keeps being replaced")


def _regular(fd: int, path: Path) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"lock file {path} is not a regular file; refusing to lock it")
    return info


def _timeout(path: Path, timeout: float) -> LedgerLocked:
    try:
        holder = describe_holder(os.lstat(path), path)
    except OSError:
        holder = None
    return LedgerLocked(
        f"could not lock {path} within {timeout:g}s: {holder or 'another portalloc is writing the ledger'}; "
        "try again, or raise --lock-timeout"
    )


def describe_holder(lock_file: os.stat_result, path: Path, proc: Path = Path("/proc")) -> str | None:
    """Who holds a ``flock`` on ``lock_file`` (at ``path``), from ``/proc/locks`` (Linux); ``None`` if it cannot tell.

    Says when the holder is stopped (Ctrl-Z, SIGSTOP: it will never let go by itself)
    and when its command line does not mention portalloc, apart from the ledger's own
    paths (something else locked the file: ``flock``, an editor, a backup tool).
    """
    pid = _holder_pid(lock_file, proc)
    if pid is None:
        return None
    try:
        argv = (proc / str(pid) / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        status = (proc / str(pid) / "stat").read_text(errors="replace")
    except OSError:
        return f"held by pid {pid}"
    command = " ".join(arg.decode(errors="replace") for arg in argv)
    if len(command) > 120:
        command = command[:117] + "..."
    text = f"held by pid {pid} ({command})"
    # The state is the field after the parenthesised command name, which may itself hold spaces.
    state = status.rpartition(")")[2].split()[:1]
    if state and state[0] in ("T", "t"):
        text += f", which is stopped (resume it with `kill -CONT {pid}`, or end it)"
    ledger = str(path.with_name(path.name.removesuffix(LOCK_SUFFIX)))
    if "portalloc" not in command.replace(str(path), "").replace(ledger, ""):
        text += ", which does not look like portalloc"
    return text


def _holder_pid(lock_file: os.stat_result, proc: Path) -> int | None:
    device = f"{os.major(lock_file.st_dev):02x}:{os.minor(lock_file.st_dev):02x}:{lock_file.st_ino}"
    try:
        lines = (proc / "locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 4242 00:2b:123456 0 EOF"; "->" marks a waiter, not a holder.
        fields = line.split()
        if len(fields) >= 6 and fields[1] != "->" and fields[5] == device and fields[4].isdigit():
            return int(fields[4])
    return None
