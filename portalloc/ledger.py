"""How the ledger file is read, locked and written safely. No allocation logic here.

* Reads take no lock: every write replaces the file by ``os.replace``, so a reader sees
  the old file or the new one, never half of one.
* Every read-modify-write holds ``<ledger>.lock`` (``filelock``), re-reads the file under
  the lock, and writes a temp file in the same directory (write, flush, fsync), renames
  it over the ledger and fsyncs the directory.
* A file that is not a valid ledger is never overwritten.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from pydantic import ValidationError

from portalloc.errors import LedgerCorrupt, LedgerLocked, LedgerUnavailable
from portalloc.models import Allocation, Ledger, describe_validation_error

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT = 10.0


# --- bytes <-> Ledger -------------------------------------------------------------------


def _allocation_line(allocation: Allocation) -> str:
    return json.dumps(
        {
            "model": allocation.model,
            "app_num": allocation.app_num,
            "backend": allocation.backend,
            "frontend": allocation.frontend,
        },
        ensure_ascii=False,
    )


def dump_ledger(ledger: Ledger) -> bytes:
    """The canonical bytes of a ledger: one allocation per line, sorted, trailing newline.

    The same ledger always gives the same bytes, so an allocation is one line of a git
    diff and two branches that allocate different apps touch different lines.
    """
    policy = json.dumps(ledger.policy.model_dump())
    rows = sorted(ledger.allocations, key=lambda a: a.key)
    body = "[\n" + ",\n".join(f"    {_allocation_line(a)}" for a in rows) + "\n  ]" if rows else "[]"
    text = f'{{\n  "version": {ledger.version},\n  "policy": {policy},\n  "allocations": {body}\n}}\n'
    return text.encode("utf-8")


def _reject_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"the name {name!r} appears twice in one JSON object")
    return dict(pairs)


def parse_ledger(data: bytes, path: Path | str) -> Ledger:
    """Parse and fully validate ledger bytes; raise ``LedgerCorrupt`` naming ``path`` if they are not a ledger."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LedgerCorrupt(f"{path} is not a valid ledger: not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise LedgerCorrupt(f"{path} is not a valid ledger: the file is empty")
    try:
        raw = json.loads(text, object_pairs_hook=_reject_duplicate_names)
    except json.JSONDecodeError as error:
        raise LedgerCorrupt(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError as error:
        raise LedgerCorrupt(f"{path} is not a valid ledger: {error}") from None
    if not isinstance(raw, dict):
        raise LedgerCorrupt(f"{path} is not a valid ledger: expected a JSON object, found {type(raw).__name__}")
    try:
        return Ledger.model_validate(raw)
    except ValidationError as error:
        raise LedgerCorrupt(f"{path} is not a valid ledger: {describe_validation_error(error)}") from None


# --- files ------------------------------------------------------------------------------


def _unavailable(action: str, path: Path | str, error: OSError) -> LedgerUnavailable:
    if error.errno == errno.ENOENT:
        return LedgerUnavailable(f"cannot {action} {path}: the directory {Path(path).parent} does not exist")
    if error.errno == errno.EISDIR:
        return LedgerUnavailable(f"cannot {action} {path}: it is a directory")
    return LedgerUnavailable(f"cannot {action} {path}: {error.strerror or error}")


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or ``None`` if there is no ledger yet (its directory must exist)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if path.parent.is_dir() and not path.is_symlink():
            return None
        raise _unavailable("read", path, FileNotFoundError(errno.ENOENT, "not found")) from None
    except OSError as error:
        raise _unavailable("read", path, error) from None


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader or a crash sees the old file or the new one.

    Writes a temp file beside the target, fsyncs it, renames it over the target and
    fsyncs the directory. A symlink is followed (the link stays a link); the target's
    permission bits and, where the OS allows, its owner and group are kept.
    """
    target = Path(os.path.realpath(path))
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as error:
        raise _unavailable("write", path, error) from None
    temp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        # 0o666 lets the umask decide a new ledger's mode, as for any file a user creates.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise _unavailable("write", path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if old is not None:
            os.chmod(temp, stat.S_IMODE(old.st_mode))
            if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                # Only root may give a file away; otherwise the ledger becomes ours.
                with suppress(PermissionError):
                    os.chown(temp, old.st_uid, old.st_gid)
        os.replace(temp, target)
    except BaseException as error:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise _unavailable("write", path, error) from None
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_path(path: Path) -> Path:
    """The sidecar lock file: ``<ledger>.lock`` beside the real file (symlinks resolved)."""
    target = Path(os.path.realpath(path))
    return target.with_name(target.name + ".lock")


@contextmanager
def locked(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the ledger's cross-process lock; raise ``LedgerLocked`` after ``timeout`` seconds."""
    from filelock import FileLock, Timeout

    lock_file = lock_path(path)
    lock = FileLock(lock_file, timeout=timeout, poll_interval=0.002)
    try:
        lock.acquire()
    except Timeout:
        raise LedgerLocked(
            f"could not lock {lock_file} within {timeout:g}s: another portalloc is writing the ledger; "
            "try again, or raise --lock-timeout"
        ) from None
    except OSError as error:
        raise _unavailable("lock", lock_file, error) from None
    try:
        yield
    finally:
        lock.release()


class _Snapshot(NamedTuple):
    signature: tuple[int, ...]
    data: bytes | None
    ledger: Ledger


class LedgerFile:
    """One ledger on disk: cached lock-free reads and locked read-modify-write updates.

    A read re-parses the file only when it changed (by inode, size and mtime), so
    repeated lookups cost a ``stat``. ``update`` always re-reads the bytes under the lock.
    """

    def __init__(self, path: Path | str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, new_ledger: Ledger | None = None):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        #: What a missing file reads as (its policy is the one a new ledger gets).
        self.new_ledger = new_ledger or Ledger()
        self._snapshot: _Snapshot | None = None

    def _signature(self) -> tuple[int, ...]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return ()
        except OSError as error:
            raise _unavailable("read", self.path, error) from None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _load(self, data: bytes | None) -> Ledger:
        snapshot = self._snapshot
        if snapshot is not None and snapshot.data == data:
            return snapshot.ledger
        return self.new_ledger if data is None else parse_ledger(data, self.path)

    def read(self) -> Ledger:
        """The ledger as it is now (an empty one with the new-ledger policy if there is no file)."""
        signature = self._signature()
        snapshot = self._snapshot
        if snapshot is not None and signature and snapshot.signature == signature:
            return snapshot.ledger
        data = read_bytes(self.path)
        ledger = self._load(data)
        self._snapshot = _Snapshot(signature, data, ledger)
        return ledger

    def update(self, change: Callable[[Ledger], tuple[Ledger, T]]) -> T:
        """Under the lock: re-read, apply ``change``, write the result if it differs.

        ``change`` returns ``(new_ledger, result)``; ``result`` is returned. If ``change``
        raises, nothing is written.
        """
        with locked(self.path, self.lock_timeout):
            data = read_bytes(self.path)
            current = self._load(data)
            new, result = change(current)
            if new is not current:
                new_data = dump_ledger(new)
                if new_data != data:
                    atomic_write(self.path, new_data)
                    data = new_data
            self._snapshot = _Snapshot(self._signature(), data, new)
        return result
