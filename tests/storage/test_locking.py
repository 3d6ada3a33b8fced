"""The ledger lock: inode-checked ``flock``, a lock file that is never a symlink, and who holds it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from portalloc.core.allocator import assign_many
from portalloc.errors import LedgerLocked, UnsafeFile
from portalloc.storage.files import FileDirectory
from portalloc.storage.ledger import LedgerFile
from portalloc.storage.locking import acquire, lock_path


def test_a_lock_on_a_deleted_file_is_not_current(new_ledger: Path) -> None:
    with FileDirectory(new_ledger) as directory:
        held = acquire(directory, 1)
        assert held.still_current()
        lock_path(new_ledger).unlink()  # what `git clean -fdX` does to an ignored *.lock
        assert not held.still_current()
        # A second writer now locks a new file at once: the old lock excludes nobody.
        other = acquire(directory, 0)
        assert other.still_current()
        other.release()
        held.release()


def test_the_lock_file_is_never_followed_as_a_symlink(new_ledger: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    lock_path(new_ledger).symlink_to(victim)
    with pytest.raises(UnsafeFile, match="is a symlink; refusing to lock through it"):
        LedgerFile(new_ledger).update(lambda ledger: assign_many(ledger, [("m", 1)]))
    assert victim.read_text() == "precious\n"


@pytest.fixture
def flock_holder(new_ledger: Path) -> object:
    """util-linux ``flock`` holding the ledger's lock: a real process that is not portalloc."""
    lock = lock_path(new_ledger)
    lock.touch()
    # flock locks the lock file's inode through a short second name: the message shows the
    # holder's command line cut at 120 characters, and a long temporary path (pytest-xdist
    # adds popen-gwN/) cut off the end this test reads.
    os.link(lock, lock.with_name("held"))
    holder = subprocess.Popen(
        ["flock", "held", "-c", "echo held; exec sleep 60"], cwd=lock.parent, stdout=subprocess.PIPE
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    yield holder
    holder.kill()
    holder.wait()


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="/proc/locks is Linux's")
def test_a_timeout_names_the_holder_and_says_it_is_not_portalloc(new_ledger: Path, flock_holder: object) -> None:
    with pytest.raises(LedgerLocked) as caught:
        LedgerFile(new_ledger, lock_timeout=0.2).update(lambda ledger: assign_many(ledger, [("m", 1)]))
    message = str(caught.value)
    assert f"could not lock {lock_path(new_ledger)} within 0.2s: held by pid " in message
    assert "-c echo held; exec sleep 60), which does not look like portalloc; try again" in message


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="/proc/locks is Linux's")
def test_a_timeout_says_when_the_holding_portalloc_is_stopped(new_ledger: Path) -> None:
    from tests.reliability.storage import PausedWriter

    writer = PausedWriter(new_ledger, "m", 1)  # a real writer, lock held, mid read-modify-write
    os.kill(writer.process.pid, signal.SIGSTOP)  # as Ctrl-Z would
    try:
        with pytest.raises(LedgerLocked) as caught:
            LedgerFile(new_ledger, lock_timeout=0.2).update(lambda ledger: assign_many(ledger, [("n", 1)]))
    finally:
        os.kill(writer.process.pid, signal.SIGCONT)
    message = str(caught.value)
    assert f"held by pid {writer.process.pid} (" in message
    assert f"which is stopped (resume it with `kill -CONT {writer.process.pid}`, or end it)" in message
    assert "does not look like portalloc" not in message
    assert "pair" in writer.resume()


def test_a_reused_lock_checks_the_inode_afresh(tmp_path: Path) -> None:
    # The equivalence the reuse relies on: taking a released FileLock again is a fresh lock,
    # holding the inode the name has now (here after `git clean` removed the old lock file).
    ledger = tmp_path / "ports.json"
    ledger.write_text("{}")
    with FileDirectory(ledger) as directory:
        first = acquire(directory, 1.0)
        first.release()
        lock_file = tmp_path / "ports.json.lock"
        lock_file.unlink()
        again = acquire(directory, 1.0, reuse=first)
        try:
            assert again.lock is first.lock
            assert again.identity.st_ino == lock_file.stat().st_ino
            assert again.still_current()
            # While it is held, a reuse of it is refused: a new FileLock is made, and it waits.
            with pytest.raises(LedgerLocked):
                acquire(directory, 0.05, reuse=again)
        finally:
            again.release()
