"""A small run of every reliability harness part, plus the file-safety promises around it.

The full run is ``python -m tests.reliability.harness`` (figures in the README); these
configurations take seconds so that a regression fails CI.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portalloc.errors import LedgerLocked
from portalloc.service.facade import PortAllocationService
from portalloc.storage.files import FileDirectory, remove_stale_temps
from portalloc.storage.locking import lock_path
from tests.conftest import portalloc_script, read_json, subprocess_env
from tests.reliability.contention import run_contention
from tests.reliability.crash import fork_lock_holder, run_crash_injection, run_lock_holder_death, temp_files
from tests.reliability.harness import main as harness_main
from tests.reliability.storage import run_git_rewrites, run_lock_deletion, run_path_swaps

REPO = Path(__file__).resolve().parent.parent


def _portalloc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([portalloc_script(), *args], capture_output=True, text=True, env=subprocess_env(**env))


# --- the harness parts, small -----------------------------------------------------------


def test_contention_cli_and_api_on_one_ledger_lose_nothing(tmp_path: Path) -> None:
    result = run_contention(tmp_path / "portalloc.json", cli_workers=4, api_workers=4, per_worker=5, label="cli+api")
    assert result.errors == 0, result.error_samples
    assert (result.requested, result.present, result.duplicates, result.lost) == (40, 40, 0, 0)
    rows = read_json(tmp_path / "portalloc.json")["allocations"]  # type: ignore[index]
    assert len({row["backend"] for row in rows} | {row["frontend"] for row in rows}) == 2 * len(rows) == 80


def test_sigkilled_writers_never_corrupt_or_lose(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    result = run_crash_injection(ledger, kills=10, seed=1)
    assert result.trials == 10
    assert result.calls_returned > 0  # the writers got work done before dying
    assert (result.corrupt, result.conflicted, result.lost, result.unexpected, result.writer_errors) == (0, 0, 0, 0, 0)
    assert result.temps_after_next_write == 0
    assert temp_files(ledger) == []


def test_a_dead_lock_holder_blocks_nobody(tmp_path: Path) -> None:
    result = run_lock_holder_death(tmp_path / "portalloc.json", trials=2)
    assert result.samples == []
    assert result.timed_out_while_held == result.named_lock_file == 2
    assert result.acquired_after_death == result.cli_ok_after_death == 2


def test_writers_racing_git_checkout_never_start_a_fresh_ledger(tmp_path: Path) -> None:
    result = run_git_rewrites(tmp_path, writers=2, gets_each=8)
    assert result.checkouts > 0 and result.answers > 0
    assert (result.reused_held, result.unclean_failures) == (0, 0), result.samples


def test_a_lock_deleted_by_git_clean_while_held_loses_nothing(tmp_path: Path) -> None:
    result = run_lock_deletion(tmp_path, trials=2)
    assert result.samples == []
    assert (result.both_present, result.redone, result.lost, result.duplicates, result.errors) == (2, 2, 0, 0, 0)


def test_a_symlink_swapped_in_under_a_writer_is_never_written_through() -> None:
    result = run_path_swaps(trials=2)
    assert result.samples == []
    assert (result.victim_changed, result.refused) == (0, 2)


def test_harness_runs_as_one_command_and_prints_its_tables() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.harness", "-k", "2", "--lock-trials", "1", "--parts", "bc"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(b) crash injection: 2 SIGKILLs" in done.stdout
    assert "| trials | calls returned | corrupt |" in done.stdout
    assert "(c) lock-holder death" in done.stdout


def test_harness_exits_1_when_a_part_fails(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.reliability import harness
    from tests.reliability.crash import LockDeathResult

    monkeypatch.setattr(harness, "run_lock_holder_death", lambda ledger, trials: LockDeathResult(trials=1))
    assert harness_main(["--parts", "c", "--lock-trials", "1"]) == 1
    assert "FAILED (1)" in capsys.readouterr().out


# --- temp files a killed writer leaves --------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_next_write_sweeps_temp_files_of_dead_writers_only(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    service.get_or_allocate_ports("m", 1)
    dead = ledger_path.with_name(f".portalloc.json.{_dead_pid()}.0badf00d.tmp")
    alive = ledger_path.with_name(f".portalloc.json.{os.getpid()}.0badf00d.tmp")
    other = ledger_path.with_name(".other.json.1.0badf00d.tmp")
    for path in (dead, alive, other):
        path.write_bytes(b'{"half": ')
    service.get_or_allocate_ports("m", 2)
    assert not dead.exists()
    assert alive.exists() and other.exists()  # a live writer's temp file and other files are left alone
    with FileDirectory(ledger_path) as directory:
        assert remove_stale_temps(directory) == 0


# --- symlinks, modes, owners ------------------------------------------------------------


def test_cli_writes_through_a_symlink_and_the_link_stays(tmp_path: Path) -> None:
    target = tmp_path / "shared" / "ledger.json"
    target.parent.mkdir()
    link = tmp_path / "portalloc.json"
    link.symlink_to(target)  # dangling: init creates the target
    assert _portalloc("init", str(link)).returncode == 0
    assert _portalloc("--ledger", str(link), "get", "m", "1").returncode == 0
    assert _portalloc("--ledger", str(link), "get", "m", "2").returncode == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert [row["app_num"] for row in read_json(target)["allocations"]] == [1, 2]  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["portalloc.json", "shared"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["ledger.json", "ledger.json.lock"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_write_keeps_the_ledgers_owner_group_and_mode(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    service.get_or_allocate_ports("m", 1)
    os.chown(ledger_path, 4242, 4343)
    os.chmod(ledger_path, 0o640)
    inode = ledger_path.stat().st_ino
    service.get_or_allocate_ports("m", 2)
    info = ledger_path.stat()
    assert info.st_ino != inode  # really replaced, not rewritten in place
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o640)


# --- lock timeouts ----------------------------------------------------------------------


@pytest.fixture
def held_lock(ledger_path: Path) -> object:
    """A separate process holding the ledger's lock, killed afterwards."""
    PortAllocationService(ledger_path).get_or_allocate_ports("m", 1)
    pid = fork_lock_holder(ledger_path)
    yield pid
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


@pytest.mark.usefixtures("held_lock")
@pytest.mark.parametrize("how", ["option", "environment"])
def test_cli_gives_up_after_the_lock_timeout_naming_the_lock_file(ledger_path: Path, how: str) -> None:
    before = ledger_path.read_bytes()
    if how == "option":
        done = _portalloc("--ledger", str(ledger_path), "--lock-timeout", "0.2", "get", "m", "2")
    else:
        done = _portalloc("--ledger", str(ledger_path), "get", "m", "2", PORTALLOC_LOCK_TIMEOUT="0.2")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"Error: could not lock {lock_path(ledger_path)} within 0.2s")
    assert ledger_path.read_bytes() == before


@pytest.mark.usefixtures("held_lock")
def test_api_lock_timeout_raises_ledger_locked_naming_the_lock_file(ledger_path: Path) -> None:
    with pytest.raises(LedgerLocked, match=str(lock_path(ledger_path)).replace(".", r"\.")):
        PortAllocationService(ledger_path, lock_timeout=0.2).get_or_allocate_ports("m", 2)
    # Reading needs no lock, so a held lock never blocks a lookup.
    found = PortAllocationService(ledger_path, lock_timeout=0.2).get_ports("m", 1)
    assert found is not None and found.key == ("m", 1)


@pytest.mark.parametrize("timeout", [-1, float("nan"), "1", None])
def test_api_refuses_a_lock_timeout_that_is_not_seconds(ledger_path: Path, timeout: object) -> None:
    from portalloc.errors import PortallocError

    with pytest.raises(PortallocError, match="lock timeout must be a number of seconds"):
        PortAllocationService(ledger_path, lock_timeout=timeout)  # type: ignore[arg-type]
