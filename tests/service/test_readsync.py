"""A read leases the rows of a ledger that changed since this machine last took it in (issue 18): rows
that arrive without a portalloc write (git, an edit, a write with leases off) are protected from the
first read on, and a read never fails because of the host lease store."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from portalloc import PortAllocationService
from portalloc.machine.leases import STORE_NAME
from tests.conftest import RunCli


def leased(run_cli: RunCli) -> list[tuple[str, int, int, bool]]:
    done = run_cli("host", "--json")
    assert done.exit_code == 0, done.stderr
    return [
        (lease["model"], lease["app_num"], lease["backend"], lease["live"])
        for lease in json.loads(done.stdout)["leases"]
    ]


@pytest.mark.parametrize("read", [("list",), ("check",), ("stats",), ("status",), ("get", "x", "1")])
def test_a_read_leases_rows_that_arrived_without_a_write_so_another_ledger_avoids_them(
    read: tuple[str, ...], run_cli: RunCli, new_ledger: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere" / "portalloc.json"
    elsewhere.parent.mkdir()
    assert (
        run_cli("--ledger", str(elsewhere), "init", "--backend-start", "20001", "--frontend-start", "21001").exit_code
        == 0
    )
    assert run_cli("--ledger", str(elsewhere), "get", "e", "1").exit_code == 0  # this machine has a store
    assert run_cli("--no-leases", "get", "x", "1").exit_code == 0  # as git would bring it: 5001/8001, not leased
    assert ("x", 1, 5001, True) not in leased(run_cli)
    done = run_cli(*read)
    assert done.exit_code == 0 and done.stderr == "", done.stderr
    assert ("x", 1, 5001, True) in leased(run_cli)  # on main: nothing leased until a write
    other = tmp_path / "other" / "portalloc.json"
    other.parent.mkdir()
    assert run_cli("--ledger", str(other), "init").exit_code == 0
    assert run_cli("--ledger", str(other), "get", "m", "1").stdout == "m/1: backend 5003, frontend 8003\n"


def test_an_unchanged_ledger_is_not_synced_again_and_a_changed_one_is(new_ledger: Path, tmp_path: Path) -> None:
    writer = PortAllocationService(new_ledger, probe=False)
    writer.allocate_many([("a", 1)])
    store = Path(os.environ["PORTALLOC_STATE_DIR"]) / STORE_NAME
    with sqlite3.connect(store) as connection:  # end the lease behind portalloc's back: a read must not restore it
        connection.execute("UPDATE leases SET live = 0")
    reader = PortAllocationService(new_ledger, probe=False)
    reader.get_all_allocations()
    assert reader.stats().allocations == 1
    with sqlite3.connect(store) as connection:
        assert connection.execute("SELECT count(*) FROM leases WHERE live").fetchone() == (0,)  # the write's stamp
    PortAllocationService(new_ledger, probe=False, leases=False).allocate_many([("b", 1)])  # a change, not leased
    reader.get_all_allocations()
    with sqlite3.connect(store) as connection:
        rows = connection.execute("SELECT model, backend FROM leases WHERE live ORDER BY model").fetchall()
    assert rows == [("a", 5001), ("b", 5003)]


def test_a_write_through_a_symlink_stamps_the_file_it_wrote(new_ledger: Path, tmp_path: Path) -> None:
    """The writer records the real path it wrote through: a reader by the link or by the file finds that stamp."""
    link = tmp_path / "link.json"
    link.symlink_to(new_ledger)
    PortAllocationService(link, probe=False).allocate_many([("a", 1)])
    store = Path(os.environ["PORTALLOC_STATE_DIR"]) / STORE_NAME
    with sqlite3.connect(store) as connection:  # end the lease behind portalloc's back: a read must not restore it
        connection.execute("UPDATE leases SET live = 0")
    for path in (link, new_ledger):
        PortAllocationService(path, probe=False).get_all_allocations()
        with sqlite3.connect(store) as connection:
            assert connection.execute("SELECT count(*) FROM leases WHERE live").fetchone() == (0,), path


def test_a_store_that_cannot_be_used_leaves_the_read_working_with_one_warning(
    run_cli: RunCli, new_ledger: Path
) -> None:
    assert run_cli("get", "a", "1").exit_code == 0  # the store exists
    assert run_cli("--no-leases", "get", "x", "1").exit_code == 0
    store = Path(os.environ["PORTALLOC_STATE_DIR"]) / STORE_NAME
    store.chmod(0o660)  # others may write it: refused (they could make this machine hand a port out twice)
    for read in (("list",), ("get", "x", "1")):
        done = run_cli(*read)
        assert done.exit_code == 0 and "5003" in done.stdout
        assert done.stderr == (
            f"Warning: the rows of {new_ledger} are not leased on this machine yet: the host lease store {store} "
            "is writable by others (mode 660); chmod go-w it, or set PORTALLOC_STATE_DIR to a directory of your "
            "own, or turn host leases off (PORTALLOC_LEASES=0)\n"
        )


def test_a_read_never_makes_the_store(run_cli: RunCli, new_ledger: Path) -> None:
    assert run_cli("--no-leases", "get", "x", "1").exit_code == 0
    for read in (("list",), ("get", "x", "1"), ("stats",), ("status",)):
        done = run_cli(*read)
        assert done.exit_code == 0 and done.stderr == "", done.stderr
    assert not (Path(os.environ["PORTALLOC_STATE_DIR"]) / STORE_NAME).exists()


def test_a_busy_store_leaves_the_sync_to_the_next_read(run_cli: RunCli, new_ledger: Path) -> None:
    assert run_cli("get", "a", "1").exit_code == 0  # the store exists
    assert run_cli("--no-leases", "get", "x", "1").exit_code == 0
    store = Path(os.environ["PORTALLOC_STATE_DIR"]) / STORE_NAME
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction, held
    try:
        done = run_cli("list")
        assert done.exit_code == 0 and "5003" in done.stdout
        assert done.stderr.startswith(f"Warning: the rows of {new_ledger} are not leased on this machine yet: ")
        assert "database is locked" in done.stderr
    finally:
        holder.rollback()
        holder.close()
    assert run_cli("list").stderr == ""
    assert ("x", 1, 5003, True) in leased(run_cli)
