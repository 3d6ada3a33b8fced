"""The ledger's cross-process lock: ``flock`` on the sidecar ``<ledger>.lock``, checked by inode.

Why not ``filelock.FileLock``: the lock file must be opened relative to the ledger's
open directory and without following a symlink (a ``.lock`` that links to
``/etc/passwd`` must not be truncated or locked), and a writer must be able to ask,
right before it renames its write into place, whether the lock it holds is still the
file named ``<ledger>.lock``. ``git clean -fdX`` deletes ignored ``*.lock`` files, and
a lock on a deleted inode excludes nobody: the next writer creates a new file and
locks that. So ``HeldLock.still_current`` compares the held descriptor's inode with
the name's, and the ledger redoes its read-modify-write under a new lock when they
differ (see ``LedgerFile.update``).

The kernel drops the lock of a process that dies, so a crash never leaves the ledger
locked. A timeout names the holder when ``/proc/locks`` shows it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from contextlib import suppress
from pathlib import Path

from portalloc.errors import LedgerLocked, LedgerUnavailable, UnsafeFile
from portalloc.files import FileDirectory, same_file

LOCK_SUFFIX = ".lock"
#: How often a writer waiting for the lock tries again. A write holds it about 1 ms,
#: so a coarser poll would leave the ledger idle most of the time.
POLL_INTERVAL = 0.001
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class HeldLock:
    """A held ``flock`` on ``<name>.lock`` in an open directory; release with ``release``."""

    def __init__(self, directory: FileDirectory, fd: int) -> None:
        self.directory = directory
        self.name = directory.name + LOCK_SUFFIX
        self.fd = fd

    @property
    def path(self) -> Path:
        """The lock file's path, for messages."""
        return self.directory.real.with_name(self.name)

    def still_current(self) -> bool:
        """Whether ``<name>.lock`` is still the inode this lock holds (``git clean`` may have removed it)."""
        now = self.directory.lstat(self.name)
        return now is not None and same_file(now, os.fstat(self.fd))

    def release(self) -> None:
        """Unlock and close (closing alone would unlock too; this says so)."""
        if self.fd >= 0:
            with suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def acquire(directory: FileDirectory, timeout: float, *, deadline: float | None = None) -> HeldLock:
    """Lock ``directory``'s file, waiting at most ``timeout`` seconds; raise ``LedgerLocked`` after that.

    ``deadline`` (a ``time.monotonic()`` value) ends the wait sooner, for a caller that
    spends one timeout on several steps. A lock taken on a file that was removed or
    replaced meanwhile is dropped and taken again on the file that the name now holds.
    """
    name = directory.name + LOCK_SUFFIX
    deadline = time.monotonic() + timeout if deadline is None else deadline
    while True:
        fd = _open_lock_file(directory, name)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise _timeout(directory.real.with_name(name), fd, timeout) from None
                    time.sleep(POLL_INTERVAL)
                except OSError as error:
                    raise LedgerUnavailable(f"cannot lock {directory.real.with_name(name)}: {error.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        held = HeldLock(directory, fd)
        if held.still_current():
            return held
        held.release()  # we locked a file that is gone from its name: lock the one there now
        if time.monotonic() >= deadline:
            raise LedgerLocked(f"could not lock {held.path} within {timeout:g}s: the lock file keeps being replaced")


def _open_lock_file(directory: FileDirectory, name: str) -> int:
    path = directory.real.with_name(name)
    try:
        # 0o666 under the umask: the lock is shared by everyone who may write the ledger.
        fd = os.open(name, _OPEN_FLAGS, 0o666, dir_fd=directory.fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafeFile(f"lock file {path} is a symlink; refusing to lock through it") from None
        raise LedgerUnavailable(f"cannot lock {path}: {error.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafeFile(f"lock file {path} is not a regular file; refusing to lock it")
    return fd


def _timeout(path: Path, fd: int, timeout: float) -> LedgerLocked:
    holder = describe_holder(os.fstat(fd), path)
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
