"""The host lease store and the write path through it: real files, real SQLite, real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portalloc.errors import LeaseStoreUnavailable
from portalloc.machine.leases import STORE_NAME, open_store, state_dir
from portalloc.service.facade import PortAllocationService
from tests.conftest import subprocess_env


def service(path: Path, **options: object) -> PortAllocationService:
    return PortAllocationService(path, probe=False, **options)  # type: ignore[arg-type]


def store_dir() -> Path:
    return Path(os.environ["PORTALLOC_STATE_DIR"])


def live_leases() -> list[tuple[str, str, int, int, int]]:
    with sqlite3.connect(store_dir() / STORE_NAME) as db:
        return db.execute(
            "SELECT d.identity, l.model, l.app_num, l.backend, l.frontend FROM leases l "
            "JOIN ledgers d ON d.id = l.ledger_id WHERE l.live ORDER BY l.backend"
        ).fetchall()


# --- where the store lives, and who may use it ---------------------------------------------


def test_state_dir_follows_the_documented_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORTALLOC_STATE_DIR", "XDG_STATE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LeaseStoreUnavailable, match=r"no home directory.*PORTALLOC_STATE_DIR.*PORTALLOC_LEASES=0"):
        state_dir()
    monkeypatch.setenv("HOME", "/h")
    assert state_dir() == Path("/h/.local/state/portalloc")
    monkeypatch.setenv("XDG_STATE_HOME", "/x")
    assert state_dir() == Path("/x/portalloc")
    monkeypatch.setenv("PORTALLOC_STATE_DIR", "/s")
    assert state_dir() == Path("/s")


def test_a_new_store_is_private_and_carries_its_schema_version(tmp_path: Path) -> None:
    store = open_store(tmp_path / "state")
    store.close()
    assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "state" / STORE_NAME).stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(tmp_path / "state" / STORE_NAME) as db:
        assert dict(db.execute("SELECT name, value FROM meta")) == {"schema_version": 2, "readable_by": 1}
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_live_leases_on_a_port_are_found_through_the_port_indexes_not_a_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``leases(port=…)`` answers from the two live port indexes: scanning one whole made an import of
    10,000 rows, which asks about each of its ports, take 12 s (the benchmark's ``import`` row)."""
    store = open_store(tmp_path)
    with store.transaction():
        ledger = store.ledger_id("a", None, None)
        for n in range(1, 50):
            store.lease(ledger, ("m", n), (5001 + 2 * n, 8001 + 2 * n))
        store.release(ledger, [("m", 2)], "released")
    plans: list[str] = []
    execute = store.connection.execute

    def explained(query: str, args: object = ()) -> object:
        if query.startswith("SELECT"):
            plans.extend(row[3] for row in execute("EXPLAIN QUERY PLAN " + query, args))  # type: ignore[arg-type]
        return execute(query, args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "connection", type("Traced", (), {"execute": staticmethod(explained)})())
    assert [lease.key for lease in store.leases(port=5011)] == [("m", 5)]  # as a backend
    assert [lease.key for lease in store.leases(port=8011)] == [("m", 5)]  # as a frontend
    assert store.leases(port=5005) == []  # m/2's lease ended
    assert any("leases_live_backend (backend=?)" in plan for plan in plans), plans
    assert any("leases_live_frontend (frontend=?)" in plan for plan in plans), plans
    assert not [plan for plan in plans if plan.startswith("SCAN")], plans


def test_a_schema_1_store_gains_worktree_leases_and_stays_readable_until_it_holds_one(tmp_path: Path) -> None:
    # A store as the first schema made it: no worktree_leases table.
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute(
            "CREATE TABLE ledgers (id INTEGER PRIMARY KEY, identity TEXT NOT NULL UNIQUE, "
            "repository TEXT, relative TEXT)"
        )
        db.executemany("INSERT INTO meta VALUES (?, 1)", [("schema_version",), ("readable_by",)])
    os.chmod(tmp_path / STORE_NAME, 0o600)
    store = open_store(tmp_path)
    meta = "SELECT name, value FROM meta"
    assert dict(store.connection.execute(meta)) == {"schema_version": 2, "readable_by": 1}
    tree = tmp_path / "tree"
    tree.mkdir()
    with store.transaction():
        ledger_id = store.ledger_id("git:x:portalloc.json", "x", "portalloc.json")
        store.worktrees.lease(ledger_id, tree, ("m", 1), (7999, 10999))
    # Now an older portalloc, blind to worktree pairs, must not use the store.
    assert dict(store.connection.execute(meta)) == {"schema_version": 2, "readable_by": 2}
    assert store.worktrees.pair(ledger_id, tree, ("m", 1)) == (7999, 10999)
    assert store.leased_ports((5001, 10999), {}) == {7999, 10999}
    assert store.leased_ports((5001, 10999), {}, worktree=(ledger_id, tree, [("m", 1)])) == set()  # its own
    tree.rmdir()
    assert store.leased_ports((5001, 10999), {}) == set()  # a removed worktree's pairs are not avoided
    with store.transaction():
        assert store.worktrees.end(ledger_id, tree) == 1
    assert store.worktrees.leases() == []
    store.close()


def test_a_store_a_newer_portalloc_made_incompatible_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        db.execute("UPDATE meta SET value = 99 WHERE name = 'readable_by'")
    with pytest.raises(LeaseStoreUnavailable, match="newer portalloc"):
        open_store(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_store_of_another_user_is_refused_even_to_root(tmp_path: Path) -> None:
    open_store(tmp_path / "theirs").close()
    os.chown(tmp_path / "theirs" / STORE_NAME, 65534, 65534)
    with pytest.raises(LeaseStoreUnavailable, match="belongs to uid 65534"):
        open_store(tmp_path / "theirs")
    os.chown(tmp_path / "theirs", 65534, 65534)
    with pytest.raises(LeaseStoreUnavailable, match=r"directory .* belongs to uid 65534"):
        open_store(tmp_path / "theirs")


def test_a_store_others_may_write_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path / "shared").close()
    os.chmod(tmp_path / "shared", 0o777)
    with pytest.raises(LeaseStoreUnavailable, match="writable by others"):
        open_store(tmp_path / "shared")


# --- the write path -----------------------------------------------------------------------


def test_two_ledgers_on_one_machine_never_get_one_port(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = service(tmp_path / "a" / "portalloc.json").get_or_allocate_ports("m", 1)
    second = service(tmp_path / "b" / "portalloc.json").get_or_allocate_ports("m", 1)
    assert first.ports == (5001, 8001)
    assert second.ports == (5003, 8003)  # on main both were 5001/8001
    assert [row[3:] for row in live_leases()] == [(5001, 8001), (5003, 8003)]


def test_with_leases_off_allocation_is_todays_and_no_store_is_made(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name in ("a", "b"):
        assert service(tmp_path / name / "portalloc.json", leases=False).get_or_allocate_ports("m", 1).ports == (
            5001,
            8001,
        )
    assert not (store_dir() / STORE_NAME).exists()


def test_release_then_get_reuses_the_pair_and_the_lease_ends(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    api = service(ledger)
    assert api.get_or_allocate_ports("m", 1).ports == (5001, 8001)
    api.get_or_allocate_ports("m", 2)
    assert api.release_ports("m", 1)
    assert [row[1:3] for row in live_leases()] == [("m", 2)]
    assert api.get_or_allocate_ports("n", 1).ports == (5001, 8001)


def test_a_key_dropped_from_the_file_comes_back_with_its_leased_pair(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    service(ledger).allocate_many([("m", 1), ("m", 2)])
    line = b'    {"model": "m", "app_num": 1, "backend": 5001, "frontend": 8001},\n'
    ledger.write_bytes(ledger.read_bytes().replace(line, b""))  # dropped outside portalloc, as git stash does
    assert service(ledger).get_ports("m", 1) is None
    assert service(ledger).get_or_allocate_ports("x", 1).ports == (5005, 8005)  # m/1's pair stays leased
    assert service(ledger).get_or_allocate_ports("m", 1).ports == (5001, 8001)  # and comes back
    assert service(ledger).get_ports("m", 1) is not None


@pytest.mark.parametrize("dropped", [2, 70])  # a search per key, and (past 64 keys) one read of the ledger's leases
def test_many_keys_dropped_from_the_file_come_back_with_their_leased_pairs(tmp_path: Path, dropped: int) -> None:
    ledger = tmp_path / "portalloc.json"
    pairs = {a.key: a.ports for a in service(ledger).allocate_many([("m", n) for n in range(1, 101)])}
    service(ledger).release_ports("m", 1)  # an ended lease: m/1 is not put back
    text = ledger.read_text()
    for n in range(2, dropped + 2):
        text = "".join(line for line in text.splitlines(keepends=True) if f'"app_num": {n},' not in line)
    ledger.write_text(text)  # dropped outside portalloc, as git stash does
    wanted = [("m", n) for n in range(1, dropped + 2)]
    back = service(ledger).allocate_many(wanted)
    assert {a.key: a.ports for a in back[1:]} == {key: pairs[key] for key in wanted[1:]}
    ports = [port for allocation in service(ledger).ledger().allocations for port in allocation.ports]
    assert len(ports) == len(set(ports)) == 200  # m/1, released, got a free pair again


def test_a_ledger_added_in_a_transaction_rolled_back_is_not_remembered(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(RuntimeError), store.transaction():
        assert store.ledger_id("gone", None, None) == store.known_ledger_id("gone")
        raise RuntimeError("rolled back")
    assert store.known_ledger_id("gone") is None
    with store.transaction():
        ledger_id = store.ledger_id("kept", None, None)
        store.lease(ledger_id, ("m", 1), (5001, 8001))
    assert [(lease.identity, lease.key) for lease in store.leases()] == [("kept", ("m", 1))]
    assert store.live_pairs(ledger_id, [("m", 1), ("m", 2)]) == {("m", 1): (5001, 8001)}


def test_a_write_that_cannot_have_the_store_writes_nothing_and_says_how_to_fix_it(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    service(ledger).get_or_allocate_ports("m", 1)
    before = ledger.read_bytes()
    os.chmod(store_dir(), 0o777)  # no longer private: refused
    with pytest.raises(LeaseStoreUnavailable, match="PORTALLOC_STATE_DIR"):
        service(ledger).get_or_allocate_ports("m", 2)
    with pytest.raises(LeaseStoreUnavailable):
        service(ledger).release_ports("m", 1)
    assert ledger.read_bytes() == before
    assert service(ledger).get_or_allocate_ports("m", 1).ports == (5001, 8001)  # a read needs no store


def test_a_ledger_whose_work_tree_is_gone_is_no_longer_avoided(tmp_path: Path) -> None:
    (tmp_path / "ci-clone").mkdir()
    service(tmp_path / "ci-clone" / "portalloc.json").get_or_allocate_ports("m", 1)
    shutil.rmtree(tmp_path / "ci-clone")  # rm -rf of a CI clone
    (tmp_path / "next").mkdir()
    assert service(tmp_path / "next" / "portalloc.json").get_or_allocate_ports("m", 1).ports == (5001, 8001)


# --- many processes at once, and crashes ------------------------------------------------

WORKER = """
import sys
from pathlib import Path
from portalloc.service.facade import PortAllocationService
api = PortAllocationService(Path(sys.argv[1]), probe=False)
for n in range(1, int(sys.argv[2]) + 1):
    pair = api.get_or_allocate_ports("m", n)
    print(f"m {n} {pair.backend} {pair.frontend}", flush=True)
    if sys.argv[3] == "churn" and n % 3 == 0:
        print(f"releasing m {n - 1}", flush=True)  # before: a kill right after the release must not lose the word
        api.release_ports("m", n - 1)
"""


def run_workers(paths: list[Path], count: int, mode: str = "plain") -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(count), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for path in paths
    ]


def ledger_rows(path: Path) -> dict[tuple[str, int], tuple[int, int]]:
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["allocations"]
    return {(r["model"], r["app_num"]): (r["backend"], r["frontend"]) for r in rows}


def test_eight_processes_on_eight_ledgers_hand_out_no_port_twice(tmp_path: Path) -> None:
    paths = []
    for i in range(8):
        (tmp_path / f"l{i}").mkdir()
        paths.append(tmp_path / f"l{i}" / "portalloc.json")
    workers = run_workers(paths, 12)
    answers = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        answers += [line.split() for line in out.splitlines()]
    ports = [int(port) for answer in answers for port in answer[2:]]
    assert len(answers) == 96
    assert len(ports) == len(set(ports))  # 0 duplicates across eight ledgers and eight locks


@pytest.mark.slow
def test_sigkill_at_any_instant_leaves_every_answered_port_leased_or_in_the_ledger(tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        (tmp_path / f"l{i}").mkdir()
        paths.append(tmp_path / f"l{i}" / "portalloc.json")
    answered: dict[tuple[int, tuple[str, int]], tuple[int, int]] = {}
    for round_number in range(6):
        workers = run_workers(paths, 400, "churn")
        started = [worker.stdout.readline() for worker in workers if worker.stdout]  # each has answered once
        time.sleep(0.05 + 0.07 * round_number)  # then killed mid-stream, at a different instant each round
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
        for index, worker in enumerate(workers):
            assert worker.stdout is not None
            # Through the buffer readline filled: communicate() reads the pipe itself, and under load the
            # lines a worker printed before the first readline (answers, "releasing") were in that buffer.
            out = worker.stdout.read()
            worker.communicate()
            for line in (started[index] + out).splitlines():
                words = line.split()
                if not words:
                    continue  # a worker killed between its answers may leave an empty line
                if words[0] == "releasing":  # released, or about to be: either way no longer promised
                    answered.pop((index, (words[1], int(words[2]))), None)
                elif len(words) == 4:
                    answered[(index, (words[0], int(words[1])))] = (int(words[2]), int(words[3]))
    leased = {(row[1], row[2], row[3], row[4]) for row in live_leases()}
    held: dict[int, set[tuple[int, str, int]]] = {}
    for index, path in enumerate(paths):
        for key, pair in ledger_rows(path).items():
            for port in pair:
                held.setdefault(port, set()).add((index, *key))
    for (index, key), pair in answered.items():
        in_ledger = ledger_rows(paths[index]).get(key) == pair
        assert in_ledger or (*key, *pair) in leased, (index, key, pair)
    assert answered and all(len(holders) == 1 for holders in held.values())


OTHER_PROCESS = """
import sys
from pathlib import Path
from portalloc.machine.leases import open_store
store = open_store(Path(sys.argv[1]))
with store.transaction():
    ledger_id = store.ledger_id("path:/other/portalloc.json", None, None)
    store.saw_checkout(ledger_id, Path(sys.argv[2]), None)
    store.lease(ledger_id, ("x", 1), (5003, 8003))
"""


def test_a_long_lived_store_sees_what_another_process_leased_and_its_own_changes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "state")
    span = (5001, 10999)
    with store.transaction():
        ledger_id = store.ledger_id("path:/mine/portalloc.json", None, None)
        store.saw_checkout(ledger_id, tmp_path / "portalloc.json", None)
        store.lease(ledger_id, ("m", 1), (5001, 8001))
        store.lease(ledger_id, ("m", 2), (20001, 8005))  # one port in the span
    assert store.leased_ports(span, {}) == {5001, 8001, 8005}
    assert store.leased_ports(span, {ledger_id: [("m", 1)]}) == {8005}  # a key never avoids its own pair
    other = [sys.executable, "-c", OTHER_PROCESS, str(tmp_path / "state"), str(tmp_path / "portalloc.json")]
    subprocess.run(other, check=True, env=subprocess_env())
    assert store.leased_ports(span, {}) == {5001, 8001, 8005, 5003, 8003}  # the kept index was refreshed
    with store.transaction():
        store.release(ledger_id, [("m", 1)], "released")
        store.lease(ledger_id, ("m", 2), (5007, 8007))  # moved
    assert store.leased_ports(span, {}) == {5003, 8003, 5007, 8007}
    with pytest.raises(RuntimeError), store.transaction():
        store.lease(ledger_id, ("m", 3), (5009, 8009))
        raise RuntimeError("rolled back")
    assert store.leased_ports(span, {}) == {5003, 8003, 5007, 8007}


def test_a_batch_of_existing_keys_needs_no_store(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    service(ledger).allocate_many([("m", 1), ("m", 2)])
    os.chmod(store_dir(), 0o777)  # refused from now on
    assert [a.ports for a in service(ledger).allocate_many([("m", 2), ("m", 1)])] == [(5003, 8003), (5001, 8001)]


def test_a_store_nobody_holds_closes_its_connection(tmp_path: Path) -> None:
    """sqlite3 keeps a connection in a reference cycle; the store closes it as it goes, so the last process to
    leave checkpoints the write-ahead log (``cli.entry.leave`` skips the collector that would)."""
    store = open_store(tmp_path)
    connection = store.connection
    del store
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("SELECT 1")


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_store_let_go_by_another_thread_than_its_own_is_no_error(tmp_path: Path) -> None:
    import threading

    held = [open_store(tmp_path)]
    other = threading.Thread(target=held.clear)  # the last reference goes there: the store's finalizer runs there
    other.start()
    other.join()
    assert held == []
