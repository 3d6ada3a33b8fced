"""Reading a file that is what it claims to be: a regular file of bounded size.

Every file portalloc reads that a user or a repository could have put there (a ledger
or another checkout's copy of it, pre-configuration, compose and ``.env`` files, an
import's input, git hooks and ``.gitattributes``) comes through ``read_regular_file``:
a FIFO would block the reader forever, ``/dev/zero`` would fill memory, and a ``.env``
that is ``/dev/null`` must not be "rewritten" into a regular file. (Files of ``/proc``,
git's own metadata that ``machine.identity`` follows, the package's data files and the
server's event journal in the state directory are read directly.) The file is opened
without blocking and checked on the open descriptor, so what is checked is what is read.

Every file portalloc writes is written the same way (``FileDirectory.write``): a temp
file in the directory the file was read from, mode and owner set on the open
descriptor, then a rename relative to that directory. A file a command writes on a
user's behalf (``atomic_write``: ``.env``, an export, a PNG) is the file named, never
what a symbolic link there points to (``output_target``): a repository can commit
``app.env -> /etc/passwd``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from portalloc.errors import UnsafeFile

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class RegularFile(NamedTuple):
    """The bytes of a regular file and the ``fstat`` of the descriptor they were read from."""

    data: bytes
    stat: os.stat_result


def read_regular_file(
    path: Path | str, what: str, limit: int, *, dir_fd: int | None = None, shown: Path | str | None = None
) -> RegularFile:
    """Read ``path`` (relative to ``dir_fd`` if given) if it is a regular file of at most ``limit`` bytes.

    ``what`` names the file in messages ("ledger", "compose file"), and ``shown`` its
    path (default ``path``: with ``dir_fd``, the full path reads better). Raises ``UnsafeFile``
    for anything that is not a regular file or is larger than ``limit``; ``OSError``
    (``FileNotFoundError`` included) passes through for the caller to word, since a
    missing file means different things to different callers.
    """
    fd = os.open(path, _READ_FLAGS, dir_fd=dir_fd)
    path = path if shown is None else shown
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{what} {path} is not a regular file ({file_kind(info.st_mode)}); refusing to read it")
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


def file_kind(mode: int) -> str:
    """What a ``st_mode`` that is not a regular file's is, for a message: ``a FIFO``, ``a directory``…"""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


# --- writing ----------------------------------------------------------------------------

#: Every file portalloc writes goes through a temp file named ``.<name>.<pid>.<random>.tmp``
#: beside it; ``remove_stale_temps`` is the one cleaner of the ones killed writers leave.
TEMP_SUFFIX = ".tmp"
#: The largest pid Linux hands out (``pid_max`` can be at most 2**22); longer digit runs are not ours.
_MAX_PID_DIGITS = 7
#: Reads of a file that keeps being replaced under the reader before settling for the last one.
_READ_ATTEMPTS = 5


def temp_name(name: str) -> str:
    """The name of a new temp file for writing ``name`` (in the same directory)."""
    return f".{name}.{os.getpid()}.{os.urandom(4).hex()}{TEMP_SUFFIX}"


class FileDirectory:
    """The directory of one file, opened once: every read, write and rename of the file goes through it.

    ``path`` is resolved once (symlinks followed, as a user who links a ledger
    expects; with ``follow_symlinks=False`` only the directories above the file are,
    and the file is the name itself, whatever it is); from then on the file is named
    relative to the open directory, so a directory or link swapped afterwards cannot
    redirect a write. Use as a context manager, or call ``close``.
    """

    def __init__(self, path: Path | str, *, follow_symlinks: bool = True) -> None:
        self.path = Path(path)
        if follow_symlinks:
            real = Path(os.path.realpath(path))
        else:
            real = Path(os.path.realpath(self.path.parent)) / self.path.name
        self.real = real
        self.name = real.name
        self.fd = os.open(real.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))

    def __enter__(self) -> FileDirectory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the directory descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def lstat(self, name: str | None = None) -> os.stat_result | None:
        """``lstat`` of ``name`` (default: the file) in this directory, or ``None`` if there is none."""
        try:
            return os.stat(name or self.name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def read(self, what: str, limit: int) -> RegularFile | None:
        """``read_regular_file`` of the file, or ``None`` if it does not exist.

        Refuses (``UnsafeFile``) a name that became a symlink after ``path`` was
        resolved; a file that another writer replaced while it was read is read again.
        """
        for _ in range(_READ_ATTEMPTS):
            try:
                found = read_regular_file(self.name, what, limit, dir_fd=self.fd, shown=self.path)
            except FileNotFoundError:
                return None
            now = self.lstat()
            if now is not None and stat.S_ISLNK(now.st_mode):
                raise UnsafeFile(f"{what} {self.path} became a symlink after it was resolved; refusing to use it")
            if now is None or same_file(now, found.stat):
                return found
            # Another writer renamed a new version in while we read: read that one.
        return found

    def write(
        self,
        data: bytes,
        *,
        like: os.stat_result | None,
        exclusive: bool = False,
        before_commit: Callable[[], None] | None = None,
        sync_directory: bool = True,
    ) -> None:
        """Replace the file with ``data`` so that a reader or a crash sees the old file or the new one.

        Writes a temp file in this directory (write, fsync), gives it ``like``'s mode,
        owner and group on the open descriptor, then renames it over the file and
        fsyncs the directory. ``exclusive`` links instead of renaming, so that it fails
        (``FileExistsError``) if the name exists. ``before_commit`` runs last before the
        rename and may raise to call the write off (the temp file is removed).
        Nothing after the rename can fail. ``sync_directory=False`` leaves the directory
        fsync to the caller (``sync``), which must make it before it reports the write done.
        """
        if like is not None and not stat.S_ISREG(like.st_mode):
            raise UnsafeFile(f"{self.path} is not a regular file ({file_kind(like.st_mode)}); refusing to replace it")
        temp = temp_name(self.name)
        # 0o666 lets the umask decide a new file's mode, as for any file a user creates.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666, dir_fd=self.fd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if like is not None:
                    _copy_owner_and_mode(fd, like)
                os.fsync(fd)
            finally:
                os.close(fd)
            if before_commit is not None:
                before_commit()
            if exclusive:
                os.link(temp, self.name, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
                os.unlink(temp, dir_fd=self.fd)
            else:
                os.replace(temp, self.name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp, dir_fd=self.fd)
            raise
        remove_stale_temps(self)
        if sync_directory:
            self.sync()

    def sync(self) -> None:
        """fsync the directory, so that a rename in it survives a crash."""
        with suppress(OSError):  # some filesystems cannot fsync a directory; the write has succeeded
            os.fsync(self.fd)


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two ``stat`` results are of the same inode."""
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _copy_owner_and_mode(fd: int, like: os.stat_result) -> None:
    if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, like.st_uid, like.st_gid)
        except PermissionError:
            # Only root may give a file away, but a member of the file's group may keep
            # the group: a team ledger stays writable by the team.
            with suppress(PermissionError):
                os.fchown(fd, -1, like.st_gid)
    # After chown, which clears set-id bits.
    os.fchmod(fd, stat.S_IMODE(like.st_mode))


def output_target(path: Path | str, *, follow_symlinks: bool = False) -> Path:
    """The file a write of ``path`` replaces: ``path`` itself, unless it is a symbolic link.

    A link is refused (``UnsafeFile``): writing through ``app.env -> /etc/passwd`` would
    replace a file nobody named. With ``follow_symlinks`` (the user said so) the link's
    final target is returned instead, if it exists: a dangling link's target is never
    created, since where it points is the link's author's choice, not the user's.
    Links among the directories above ``path`` are followed either way
    (``apps -> /srv/apps`` is an ordinary layout).
    """
    path = Path(path)
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return path  # missing (to be created) or not reachable: the write itself says which
    if not is_link:
        return path
    target = Path(os.path.realpath(path))
    if not follow_symlinks:
        raise UnsafeFile(
            f"{path} is a symbolic link to {target}; refusing to write through it "
            "(--follow-symlinks writes the file it points to)"
        )
    if not target.exists():
        raise UnsafeFile(f"{path} is a symbolic link to {target}, which does not exist; refusing to create it")
    return target


def atomic_write(path: Path | str, data: bytes, *, follow_symlinks: bool = False) -> None:
    """Replace the regular file at ``path`` (or create it) with ``data``; see ``FileDirectory.write``.

    For a file that is not read first under a lock (``.env``, an export, the merge
    driver's output): mode, owner and group of the file it replaces are kept. A
    symbolic link at ``path`` is refused, or with ``follow_symlinks`` its existing
    target written (``output_target``); a link that appears at the name afterwards is
    refused too (``FileDirectory.write`` checks what it replaces).
    """
    target = output_target(path, follow_symlinks=follow_symlinks)
    with FileDirectory(target, follow_symlinks=False) as directory:
        directory.write(data, like=directory.lstat())


def remove_stale_temps(directory: FileDirectory) -> int:
    """Delete the temp files that killed writers of ``directory``'s file left; return how many.

    A writer killed between creating its temp file and the rename leaves
    ``.<name>.<pid>.<random>.tmp``; it is removed once that pid is no longer a live
    process, so a live writer's temp file is never touched, and a name that does not
    follow the scheme (another user's, a hostile one) is left alone. Never raises: it
    runs after a write has succeeded.
    """
    prefix, removed = f".{directory.name}.", 0
    try:
        names = [entry.name for entry in os.scandir(directory.fd)]
    except OSError:
        return 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
            continue
        pid_text, _, random = name[len(prefix) : -len(TEMP_SUFFIX)].partition(".")
        if not (pid_text.isascii() and pid_text.isdigit() and len(pid_text) <= _MAX_PID_DIGITS and random):
            continue
        if _pid_alive(int(pid_text)):
            continue
        with suppress(OSError):
            os.unlink(name, dir_fd=directory.fd)
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we wrote; leave the file alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. another user's live process
    return True
