"""How the ledger file is read, locked and written safely. No allocation logic here.

* Reads take no lock: every write replaces the file by ``os.replace``, so a reader sees
  the old file or the new one, never half of one.
* Every read-modify-write holds ``<ledger>.lock`` (a ``filelock.FileLock``), re-reads
  the file under the lock, and writes a temp file in the same directory (write, flush, fsync), renames it
  over the ledger and fsyncs the directory.
* A file that is not a valid ledger is never overwritten.
* A temp file left by a writer that was killed mid-write is removed by the next write
  once its pid is gone (``remove_stale_temps``); the ledger itself is never half-written.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from pydantic import ValidationError

from portalloc.errors import LedgerCorrupt, LedgerExists, LedgerLocked, LedgerUnavailable
from portalloc.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.models import Allocation, Ledger, describe_validation_error
from portalloc.strictjson import parse_json, reject_duplicate_names

T = TypeVar("T")


# --- bytes <-> Ledger -------------------------------------------------------------------


def _allocation_line(allocation: Allocation) -> str:
    # Exactly what ``json.dumps({...}, ensure_ascii=False)`` gives, at a fifth of the
    # cost: the same string encoder, and ``:d`` spells an int the way json does.
    return (
        f'    {{"model": {encode_basestring(allocation.model)}, "app_num": {allocation.app_num:d}, '
        f'"backend": {allocation.backend:d}, "frontend": {allocation.frontend:d}}}'
    )


class _LineCache:
    """The canonical lines of the allocations one ``LedgerFile`` has read or written.

    Allocations are immutable and successive ledgers of a file share them, so a write
    after one allocation formats one new line instead of n. Lines are found by
    ``id(row)``; every cached row is held, so no id can be reused while it is cached
    and a line is never stale. The cache grows by the rows it has not seen and starts
    over from the current rows once it holds twice as many. Growing only appends and
    starting over swaps in new containers, so a reader in another thread is never
    confused by a writer.
    """

    def __init__(self) -> None:
        self._state: tuple[list[Allocation], dict[int, str]] = ([], {})

    def lines_of(self, rows: list[Allocation]) -> list[str]:
        """The canonical line of each row, in order."""
        held, known = self._state
        # map/list/index run at C speed: ~30 µs for 1,000 cached rows, where formatting them is ~300.
        found: list[str | None] = list(map(known.get, map(id, rows)))
        miss = -1
        with suppress(ValueError):
            while True:
                miss = found.index(None, miss + 1)
                row = rows[miss]
                found[miss] = line = _allocation_line(row)
                held.append(row)  # held before its id goes in
                known[id(row)] = line
        lines = cast("list[str]", found)
        if len(held) > 2 * len(rows) + 64:
            self._state = (list(rows), dict(zip(map(id, rows), lines, strict=True)))
        return lines


_FOOTER = "\n  ]\n}\n"


def _header(ledger: Ledger) -> str:
    fields = ledger.policy.model_dump()
    if fields["probe"]:
        # ``probe`` is written only when it is off: ledgers that keep the default stay
        # byte-for-byte what they were, and readable by a portalloc that predates it.
        del fields["probe"]
    for name in ("reserved", "pools"):
        if not fields[name]:
            del fields[name]  # likewise: written only when there are some
    policy = json.dumps(fields)
    return f'{{\n  "version": {ledger.version},\n  "policy": {policy},\n  "allocations": '


def dump_ledger(ledger: Ledger) -> bytes:
    """The canonical bytes of a ledger: one allocation per line, sorted, trailing newline.

    The same ledger always gives the same bytes, so an allocation is one line of a git
    diff and two branches that allocate different apps touch different lines.
    """
    return _canonical(ledger, list(map(_allocation_line, ledger.in_key_order())))


def _canonical(ledger: Ledger, lines: list[str]) -> bytes:
    if not lines:
        return (_header(ledger) + "[]\n}\n").encode("utf-8")
    return (_header(ledger) + "[\n" + ",\n".join(lines) + _FOOTER).encode("utf-8")


def parse_ledger(data: bytes, path: Path | str) -> Ledger:
    """Parse and fully validate ledger bytes; raise ``LedgerCorrupt`` naming ``path`` if they are not a ledger."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LedgerCorrupt(f"{path} is not a valid ledger: not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise LedgerCorrupt(f"{path} is not a valid ledger: the file is empty")
    try:
        raw = parse_json(text)
    except ValueError as error:
        raise LedgerCorrupt(f"{path} is {error}") from None
    if not isinstance(raw, dict):
        raise LedgerCorrupt(f"{path} is not a valid ledger: expected a JSON object, found {type(raw).__name__}")
    try:
        return Ledger.model_validate(raw)
    except ValidationError as error:
        raise LedgerCorrupt(f"{path} is not a valid ledger: {describe_validation_error(error)}") from None


def _parse_known_rows(data: bytes, known: Ledger, lines: _LineCache) -> Ledger | None:
    """``parse_ledger(data)`` for a file in the canonical layout, validating only rows ``known`` lacks.

    Under the lock a writer re-reads a file that another writer has just changed by a
    row or two. A row whose line is byte for byte the canonical line of one of
    ``known``'s allocations parses to exactly that (already validated) allocation, so
    only the other lines are parsed and validated, one by one; the ledger itself is
    validated as usual. Returns ``None`` for anything else (another layout, a bad row),
    and the caller does the full parse, which also reports what is wrong.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    header = _header(known) + "[\n"
    if not (text.startswith(header) and text.endswith(_FOOTER)) or len(text) < len(header) + len(_FOOTER):
        return None
    rows = known.in_key_order()
    by_line = dict(zip(lines.lines_of(rows), rows, strict=True))
    allocations: list[Any] = []
    # No raw newline can sit inside a JSON string, and each piece must parse to exactly one
    # object, so splitting at ",\n" cuts the array where a JSON parser would.
    for line in text[len(header) : -len(_FOOTER)].split(",\n"):
        allocation = by_line.get(line)
        if allocation is None:
            try:
                allocation = Allocation.model_validate(json.loads(line, object_pairs_hook=reject_duplicate_names))
            except (ValueError, RecursionError):  # bad JSON, a repeated name, or an invalid row
                return None
        allocations.append(allocation)
    try:
        # Instances pass strict validation as they are; the ledger's own checks still run.
        return Ledger.model_validate({"version": known.version, "policy": known.policy, "allocations": allocations})
    except ValidationError:
        return None


# --- files ------------------------------------------------------------------------------


def _unavailable(action: str, path: Path | str, error: OSError) -> LedgerUnavailable:
    if error.errno == errno.ENOENT:
        # Name the directory that is really missing: through a symlink it is the target's.
        directory = Path(os.path.realpath(path)).parent
        via = f" (a symlink to {os.path.realpath(path)})" if os.path.islink(path) else ""
        return LedgerUnavailable(f"cannot {action} {path}{via}: the directory {directory} does not exist")
    if error.errno == errno.EISDIR:
        return LedgerUnavailable(f"cannot {action} {path}: it is a directory")
    return LedgerUnavailable(f"cannot {action} {path}: {error.strerror or error}")


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or ``None`` if there is no ledger yet (its directory must exist)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        # A missing file is a new ledger (also through a dangling symlink); a missing directory is a mistake.
        if Path(os.path.realpath(path)).parent.is_dir():
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
    remove_stale_temps(target)
    _fsync_directory(target.parent)


def remove_stale_temps(target: Path) -> int:
    """Delete temp files that writers killed mid-write left beside ``target``; return how many.

    A writer killed by SIGKILL (or a power cut) between creating its temp file and the
    rename leaves ``.<name>.<pid>.<random>.tmp`` behind; the ledger itself is intact.
    Such a file is removed once its pid is no longer a live process, so a temp file of
    a writer that is still running is never touched.
    """
    prefix, removed = f".{target.name}.", 0
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid_text = name[len(prefix) : -len(".tmp")].partition(".")[0]
        if not (pid_text.isascii() and pid_text.isdigit()) or _pid_alive(int(pid_text)):
            continue
        with suppress(OSError):
            os.unlink(entry.path)
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


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable. Some platforms cannot open or fsync a directory (Windows,
    # some network filesystems); the write itself has succeeded by then, so that is no error.
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def lock_path(path: Path) -> Path:
    """The sidecar lock file: ``<ledger>.lock`` beside the real file (symlinks resolved)."""
    target = Path(os.path.realpath(path))
    return target.with_name(target.name + ".lock")


#: How often a writer waiting for the lock tries again. A write holds it about 1 ms,
#: so filelock's default of 50 ms would leave the ledger idle most of the time.
_POLL_INTERVAL = 0.001


@contextmanager
def locked(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the ledger's cross-process lock; raise ``LedgerLocked`` after ``timeout`` seconds.

    The lock is a ``filelock.FileLock`` on the sidecar ``<ledger>.lock`` (``flock`` on
    POSIX). The kernel drops the lock of a process that dies, so a crash never leaves
    the ledger locked.
    """
    from filelock import FileLock, Timeout

    lock_file = lock_path(path)
    if not lock_file.parent.is_dir():
        # filelock would create missing directories; a ledger in a mistyped directory is an error instead.
        raise _unavailable("lock", path, FileNotFoundError(errno.ENOENT, "not found"))
    lock = FileLock(lock_file, timeout=timeout, poll_interval=_POLL_INTERVAL)
    try:
        lock.acquire()
    except Timeout:
        raise _lock_timeout(lock_file, timeout) from None
    except OSError as error:
        raise _unavailable("lock", lock_file, error) from None
    try:
        yield
    finally:
        lock.release()


def _lock_timeout(lock_file: Path, timeout: float) -> LedgerLocked:
    return LedgerLocked(
        f"could not lock {lock_file} within {timeout:g}s: another portalloc is writing the ledger; "
        "try again, or raise --lock-timeout"
    )


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
        self._lines = _LineCache()

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
        if data is None:
            return self.new_ledger
        if snapshot is not None:
            # Usually another writer added a row or two: validate just those.
            ledger = _parse_known_rows(data, snapshot.ledger, self._lines)
            if ledger is not None:
                return ledger
        return parse_ledger(data, self.path)

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

    def create(self, ledger: Ledger) -> None:
        """Write ``ledger`` as a new file; raise ``LedgerExists`` if the file exists (nothing is written then)."""
        with locked(self.path, self.lock_timeout):
            # Every writer holds the lock, so nothing can create the file between this test and the write.
            if os.path.lexists(self.path):
                raise LedgerExists(f"{self.path} already exists; 'portalloc policy set' changes its policy")
            atomic_write(self.path, dump_ledger(ledger))

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
                new_data = _canonical(new, self._lines.lines_of(new.in_key_order()))  # = dump_ledger(new)
                if new_data != data:
                    atomic_write(self.path, new_data)
                    data = new_data
            self._snapshot = _Snapshot(self._signature(), data, new)
        return result
