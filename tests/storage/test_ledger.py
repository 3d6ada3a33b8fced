"""Ledger storage: canonical bytes, refusal to overwrite what it cannot read, atomic writes, the lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portalloc.core.allocator import assign_many
from portalloc.core.models import Ledger, PortPolicy
from portalloc.errors import LedgerCorrupt, LedgerLocked, LedgerMissing, LedgerUnavailable, NoFreePair, UnsafeFile
from portalloc.storage.codec import parse_ledger
from portalloc.storage.files import atomic_write
from portalloc.storage.ledger import LedgerFile
from portalloc.storage.locking import lock_path


def three_apps() -> Ledger:
    ledger, _ = assign_many(Ledger(), [("model_b", 1), ("model_a", 2), ("model_a", 1)])
    return ledger


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b'{"version": 1,\n "allocations": [\n', "not valid JSON: Expecting value at line 3 column 1"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "expected a JSON object, found list"),
        (b'{"version": 1, "allocations": {}}', "allocations: Input should be a valid list"),
        (b'{"version": 7}', "ledger version 7 was written by a newer portalloc"),
        (b'{"version": 1, "version": 1}', "'version' appears twice"),
        (
            b'{"version": 1, "allocations": [{"model": "m", "app_num": 1, "backend": 70000, "frontend": 8001}]}',
            "allocations.0.backend: Input should be less than or equal to 65535",
        ),
        (
            b'{"version": 1, "allocations": [{"model": "m", "app_num": "1", "backend": 5001, "frontend": 8001}]}',
            "allocations.0.app_num: Input should be a valid integer",
        ),
        (b'{"version": 1, "surprise": true}', "surprise: Extra inputs are not permitted"),
        (b'{"version": 1, "policy": {"step": 0}}', "policy.step"),
    ],
)
def test_invalid_ledgers_are_reported_with_path_and_never_overwritten(
    ledger_path: Path, content: bytes, message: str
) -> None:
    ledger_path.write_bytes(content)
    store = LedgerFile(ledger_path)
    with pytest.raises(LedgerCorrupt) as error:
        store.update(lambda ledger: assign_many(ledger, [("m", 2)]))
    assert str(ledger_path) in str(error.value)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert ledger_path.read_bytes() == content
    with pytest.raises(LedgerCorrupt):
        store.read()


def test_missing_file_reads_as_empty_with_new_ledger_policy(ledger_path: Path) -> None:
    policy = PortPolicy(backend_start=20001, frontend_start=30001)
    store = LedgerFile(ledger_path, new_ledger=Ledger(policy=policy))
    assert store.read().allocations == []
    store.update(lambda ledger: assign_many(ledger, [("m", 1)]))
    assert parse_ledger(ledger_path.read_bytes(), ledger_path).policy == policy


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    store = LedgerFile(tmp_path / "nope" / "portalloc.json")
    with pytest.raises(LedgerUnavailable, match="does not exist"):
        store.read()
    with pytest.raises(LedgerUnavailable, match="does not exist"):
        store.update(lambda ledger: assign_many(ledger, [("m", 1)]))


def test_directory_as_ledger_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFile, match=r"is not a regular file \(a directory\)"):
        LedgerFile(tmp_path).read()


def test_failed_change_writes_nothing(ledger_path: Path) -> None:
    store = LedgerFile(ledger_path, new_ledger=Ledger(policy=PortPolicy(backend_start=5001, frontend_start=5003)))
    store.update(lambda ledger: assign_many(ledger, [("m", 1)]))
    before = ledger_path.read_bytes()
    with pytest.raises(NoFreePair):
        store.update(lambda ledger: assign_many(ledger, [("m", 2)]))
    assert ledger_path.read_bytes() == before


def test_unchanged_ledger_is_not_rewritten(ledger_path: Path) -> None:
    store = LedgerFile(ledger_path)
    store.update(lambda ledger: assign_many(ledger, [("m", 1)]))
    inode = ledger_path.stat().st_ino
    store.update(lambda ledger: assign_many(ledger, [("m", 1)]))
    assert ledger_path.stat().st_ino == inode


def test_write_keeps_permission_bits_and_leaves_no_temp_file(ledger_path: Path) -> None:
    store = LedgerFile(ledger_path)
    store.update(lambda ledger: assign_many(ledger, [("m", 1)]))
    os.chmod(ledger_path, 0o640)
    store.update(lambda ledger: assign_many(ledger, [("m", 2)]))
    assert stat.S_IMODE(ledger_path.stat().st_mode) == 0o640
    assert sorted(p.name for p in ledger_path.parent.iterdir()) == ["portalloc.json", "portalloc.json.lock"]


def test_new_ledger_mode_follows_the_umask(ledger_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(ledger_path, b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(ledger_path.stat().st_mode) == 0o640


def test_symlinked_ledger_writes_the_target_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "real" / "ledger.json"
    target.parent.mkdir()
    link = tmp_path / "portalloc.json"
    link.symlink_to(target)
    LedgerFile(link).update(lambda ledger: assign_many(ledger, [("m", 1)]))
    assert link.is_symlink()
    assert json.loads(target.read_text())["allocations"][0]["backend"] == 5001
    assert lock_path(link) == target.with_name("ledger.json.lock")


def test_cached_read_sees_a_write_by_another_writer(ledger_path: Path) -> None:
    reader = LedgerFile(ledger_path)
    assert reader.read().find("m", 1) is None
    LedgerFile(ledger_path).update(lambda ledger: assign_many(ledger, [("m", 1)]))
    found = reader.read().find("m", 1)
    assert found is not None and found.ports == (5001, 8001)


def hold_lock_in_another_process(ledger: Path) -> subprocess.Popen[str]:
    """A child process that holds the ledger's lock until its stdin closes."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from portalloc.storage import locking; from portalloc.storage.files import FileDirectory\n"
            "held = locking.acquire(FileDirectory(sys.argv[1]), 10); print('held', flush=True); sys.stdin.read()",
            str(ledger),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_lock_held_by_another_process_times_out_naming_the_lock_file(ledger_path: Path) -> None:
    holder = hold_lock_in_another_process(ledger_path)
    try:
        with pytest.raises(LedgerLocked, match=r"portalloc\.json\.lock within 0\.2s"):
            LedgerFile(ledger_path, lock_timeout=0.2).update(lambda ledger: assign_many(ledger, [("m", 1)]))
        assert not ledger_path.exists()
    finally:
        holder.communicate("")
    LedgerFile(ledger_path, lock_timeout=5).update(lambda ledger: assign_many(ledger, [("m", 1)]))
    assert ledger_path.exists()


def test_a_killed_lock_holder_frees_the_lock(ledger_path: Path) -> None:
    holder = hold_lock_in_another_process(ledger_path)
    with pytest.raises(LedgerLocked):
        LedgerFile(ledger_path, lock_timeout=0.1).update(lambda ledger: assign_many(ledger, [("m", 1)]))
    holder.kill()
    holder.wait()
    LedgerFile(ledger_path, lock_timeout=1).update(lambda ledger: assign_many(ledger, [("m", 1)]))
    assert ledger_path.exists()


# --- a ledger that was there stays the ledger ---------------------------------------------


def _add(key: tuple[str, int]) -> object:
    return lambda ledger: assign_many(ledger, [key])


def test_a_ledger_that_disappears_after_it_was_read_is_waited_for_then_refused(new_ledger: Path) -> None:
    ledger_file = LedgerFile(new_ledger, lock_timeout=0.3)
    ledger_file.update(_add(("m", 1)))
    new_ledger.unlink()
    with pytest.raises(LedgerUnavailable, match=r"disappeared after it was read .* never starts a new ledger"):
        ledger_file.update(_add(("m", 2)))
    assert sorted(p.name for p in new_ledger.parent.iterdir()) == ["portalloc.json.lock"]  # no fresh ledger


def test_a_ledger_git_puts_back_meanwhile_is_written_not_replaced(new_ledger: Path) -> None:
    import threading

    ledger_file = LedgerFile(new_ledger, lock_timeout=5)
    ledger_file.update(_add(("m", 1)))
    data = new_ledger.read_bytes()
    new_ledger.unlink()  # git's unlink ... and, 0.2 s later, its create and write
    threading.Timer(0.2, new_ledger.write_bytes, [data]).start()
    ledger_file.update(_add(("m", 2)))
    assert [a.ports for a in parse_ledger(new_ledger.read_bytes(), new_ledger).allocations] == [
        (5001, 8001),
        (5003, 8003),
    ]


def test_a_missing_ledger_while_git_holds_its_index_lock_is_never_started_afresh(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".git" / "index.lock").touch()  # what a running `git checkout` leaves
    ledger = tmp_path / "portalloc.json"
    with pytest.raises(LedgerUnavailable, match=r"while git runs in its repository \(index\.lock exists\)"):
        LedgerFile(ledger, lock_timeout=0.2).update(_add(("m", 1)))
    assert not ledger.exists()


def test_a_hard_linked_ledger_is_refused_for_writing(new_ledger: Path) -> None:
    other = new_ledger.with_name("other.json")
    os.link(new_ledger, other)
    before = new_ledger.read_bytes()
    for name in (new_ledger, other):
        ledger_file = LedgerFile(name)
        ledger_file.read()  # as the service does first: reading a hard-linked ledger is fine
        with pytest.raises(LedgerUnavailable, match=r"has 2 hard links; .*\(use a symlink instead\)"):
            ledger_file.update(_add(("m", 1)))
    assert new_ledger.read_bytes() == before
    assert sorted(p.name for p in new_ledger.parent.iterdir()) == ["other.json", "portalloc.json"]  # no lock


@pytest.mark.parametrize("argv", [["fmt"], ["repair"], ["cleanup", "--apps-dir", "."], ["get", "m", "1"]])
def test_no_lock_file_appears_beside_a_file_that_is_not_a_ledger(tmp_path: Path, argv: list[str]) -> None:
    from tests.conftest import portalloc_script, subprocess_env

    system = tmp_path / "etc"
    system.mkdir()
    passwd = system / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    link = tmp_path / "portalloc.json"
    link.symlink_to(passwd)
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(link), *argv], capture_output=True, text=True, env=subprocess_env()
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {link} is not valid JSON") and done.stderr.count("\n") == 1
    assert sorted(p.name for p in system.iterdir()) == ["passwd"]  # no /etc/passwd.lock to block useradd
    assert passwd.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


def test_hostile_temp_names_beside_the_ledger_never_fail_a_write(new_ledger: Path) -> None:
    names = [".portalloc.json.99999999999999999999.a.tmp", ".portalloc.json.-1.a.tmp", ".portalloc.json..tmp"]
    for name in names:
        (new_ledger.parent / name).write_bytes(b"x")
    LedgerFile(new_ledger).update(_add(("m", 1)))  # no OverflowError after the rename
    assert parse_ledger(new_ledger.read_bytes(), new_ledger).find("m", 1) is not None
    assert all((new_ledger.parent / name).exists() for name in names)  # not ours: left alone


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a second, unprivileged user (setuid in a child)")
def test_a_writer_who_cannot_keep_the_owner_keeps_the_group() -> None:
    import tempfile

    team, nobody = 47001, 65534  # numeric ids: the kernel needs no /etc/group entry
    shared = Path(tempfile.mkdtemp(prefix="portalloc-team-"))  # pytest's own tmp dirs are root-only (0700)
    os.chown(shared, 0, team)
    shared.chmod(0o775)
    ledger = shared / "portalloc.json"
    LedgerFile(ledger).create(Ledger())
    os.chown(ledger, 0, team)
    ledger.chmod(0o664)
    pid = os.fork()
    if pid == 0:  # a team member who is not the owner
        code = 1
        try:
            os.setgroups([team])
            os.setgid(nobody)
            os.setuid(nobody)
            LedgerFile(ledger).update(_add(("m", 1)))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    info = ledger.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (nobody, team, 0o664)
    assert parse_ledger(ledger.read_bytes(), ledger).find("m", 1) is not None
    for leftover in shared.iterdir():
        leftover.unlink()
    shared.rmdir()


def test_a_half_written_ledger_while_git_runs_is_read_again(tmp_path: Path) -> None:
    import threading

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ledger = tmp_path / "portalloc.json"
    LedgerFile(ledger).update(_add(("m", 1)))
    data = ledger.read_bytes()
    index_lock = tmp_path / ".git" / "index.lock"
    index_lock.touch()
    ledger.write_bytes(data[:10])  # git has created the file and not finished writing it

    def git_finishes() -> None:
        ledger.write_bytes(data)
        index_lock.unlink()

    threading.Timer(0.2, git_finishes).start()
    assert LedgerFile(ledger, lock_timeout=5).read().find("m", 1) is not None
    ledger.write_bytes(data[:10])  # broken with no git operation running: said at once
    with pytest.raises(LedgerCorrupt):
        LedgerFile(ledger, lock_timeout=5).read()


def test_a_missing_ledger_while_git_runs_is_waited_for_by_a_read_that_may_not_create(tmp_path: Path) -> None:
    import threading

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ledger = tmp_path / "team.json"
    LedgerFile(ledger).update(_add(("m", 1)))
    data = ledger.read_bytes()
    index_lock = tmp_path / ".git" / "index.lock"
    index_lock.touch()
    ledger.unlink()  # git has removed the work-tree file and not yet created the new one

    def git_finishes() -> None:
        ledger.write_bytes(data)
        index_lock.unlink()

    threading.Timer(0.2, git_finishes).start()
    assert LedgerFile(ledger, lock_timeout=5, create_missing=False).read().find("m", 1) is not None
    ledger.unlink()  # gone with no git operation running: said at once
    with pytest.raises(LedgerMissing, match="portalloc init"):
        LedgerFile(ledger, lock_timeout=5, create_missing=False).read()


@pytest.mark.parametrize("meanwhile", ["missing", "half written"])
def test_git_finishing_between_the_read_and_the_look_at_git_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    """A read that finds the ledger missing (or half there) and then no git operation running looks again:
    git may have finished in between, the ledger whole again (the race the timed tests above can meet)."""
    import portalloc.storage.ledger as ledger_module

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ledger = tmp_path / "team.json"
    LedgerFile(ledger).update(_add(("m", 1)))
    data = ledger.read_bytes()
    if meanwhile == "missing":
        ledger.unlink()
    else:
        ledger.write_bytes(data[:10])

    def git_finished(directory: object) -> None:
        ledger.write_bytes(data)  # by the time anyone looks at git, it has finished and the ledger is back
        return None

    monkeypatch.setattr(ledger_module, "_git_busy", git_finished)
    assert LedgerFile(ledger, lock_timeout=5, create_missing=False).read().find("m", 1) is not None


def test_the_directory_fsync_runs_after_the_lock_is_released_and_before_update_returns(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    from portalloc.storage.files import FileDirectory

    file = LedgerFile(ledger_path)
    file.update(lambda ledger: assign_many(ledger, [("a", 1)]))  # the ledger and its lock file exist now
    seen: list[tuple[bool, bytes]] = []
    real_sync = FileDirectory.sync

    def sync(directory: FileDirectory) -> None:
        # Another descriptor can take the lock now (flock is per open file), and the new rows are in place.
        fd = os.open(lock_path(ledger_path), os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free = True
            except BlockingIOError:
                free = False
        finally:
            os.close(fd)
        seen.append((free, ledger_path.read_bytes()))
        real_sync(directory)

    monkeypatch.setattr(FileDirectory, "sync", sync)
    result = file.update(lambda ledger: assign_many(ledger, [("b", 2)]))
    assert [assignment.allocation.key for assignment in result] == [("b", 2)]
    assert len(seen) == 1 and seen[0][0], "the fsync ran while the lock was held"
    assert b'"model": "b"' in seen[0][1]
    file.update(lambda ledger: assign_many(ledger, [("b", 2)]))  # nothing new: nothing written, no fsync
    assert len(seen) == 1
