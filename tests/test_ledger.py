"""Ledger storage: canonical bytes, refusal to overwrite what it cannot read, atomic writes, the lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portalloc.allocator import assign_many
from portalloc.errors import LedgerCorrupt, LedgerLocked, LedgerUnavailable, NoFreePair, UnsafeFile
from portalloc.files import atomic_write
from portalloc.ledger import LedgerFile, dump_ledger, lock_path, parse_ledger
from portalloc.models import Allocation, Ledger, PortPolicy


def three_apps() -> Ledger:
    ledger, _ = assign_many(Ledger(), [("model_b", 1), ("model_a", 2), ("model_a", 1)])
    return ledger


def test_canonical_bytes_are_stable_sorted_one_allocation_per_line() -> None:
    data = dump_ledger(three_apps())
    assert data == dump_ledger(parse_ledger(data, "x"))
    assert data.decode().splitlines() == [
        "{",
        '  "version": 1,',
        '  "policy": {"backend_start": 5001, "frontend_start": 8001, "step": 2, "max_port": 65535, '
        '"skip_bad_ports": true},',
        '  "allocations": [',
        '    {"model": "model_a", "app_num": 1, "backend": 5005, "frontend": 8005},',
        '    {"model": "model_a", "app_num": 2, "backend": 5003, "frontend": 8003},',
        '    {"model": "model_b", "app_num": 1, "backend": 5001, "frontend": 8001}',
        "  ]",
        "}",
    ]
    assert data.endswith(b"}\n")


def test_empty_ledger_bytes_and_unicode_models_kept_readable() -> None:
    assert dump_ledger(Ledger()).decode().endswith('"allocations": []\n}\n')
    ledger = Ledger().with_allocations([Allocation(model="modèle", app_num=1, backend=5001, frontend=8001)])
    assert '"modèle"' in dump_ledger(ledger).decode("utf-8")


def test_insertion_order_does_not_change_the_bytes() -> None:
    rows = list(three_apps().allocations)
    assert dump_ledger(Ledger().with_allocations(rows)) == dump_ledger(Ledger().with_allocations(rows[::-1]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b'{"version": 1,\n "allocations": [\n', "not valid JSON: Expecting value at line 3 column 1"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "expected a JSON object, found list"),
        (b'{"version": 1, "allocations": {}}', "allocations: Input should be a valid list"),
        (b'{"version": 7}', "ledger version 7 is not supported"),
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


def test_a_ledger_with_conflicts_still_loads() -> None:
    text = (
        '{"version": 1, "allocations": ['
        '{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001},'
        '{"model": "b", "app_num": 1, "backend": 5001, "frontend": 8003}]}'
    )
    assert len(parse_ledger(text.encode(), "x").allocations) == 2


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
            "import sys; from pathlib import Path; from portalloc.ledger import locked\n"
            "held = locked(Path(sys.argv[1])); held.__enter__(); print('held', flush=True); sys.stdin.read()",
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
