"""Whole-file rewrites: ``merge-driver``, ``repair`` and ``fmt`` on real files, through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from portalloc.cli.main import cli
from portalloc.core.audit import find_conflicts
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.storage.codec import dump_ledger, parse_ledger
from tests.conftest import RunCli, portalloc_script, subprocess_env

POLICY_LINE = json.dumps(PortPolicy().model_dump())


def write_rows(path: Path, *rows: tuple[str, int, int, int], policy: str = POLICY_LINE) -> bytes:
    """A ledger in the given row order, as a hand edit or a textual merge leaves it."""
    lines = ",\n".join(
        f'    {{"model": "{m}", "app_num": {n}, "backend": {b}, "frontend": {f}}}' for m, n, b, f in rows
    )
    data = f'{{\n  "version": 1,\n  "policy": {policy},\n  "allocations": [\n{lines}\n  ]\n}}\n'.encode()
    path.write_bytes(data)
    return data


def rows_of(path: Path) -> list[tuple[str, int, int, int]]:
    return [(a.model, a.app_num, a.backend, a.frontend) for a in parse_ledger(path.read_bytes(), path).allocations]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


# --- merge-driver -----------------------------------------------------------------------


def test_merge_driver_writes_ours_canonically_and_reports_moves(tmp_path: Path) -> None:
    base, ours, theirs = tmp_path / "base", tmp_path / "ours", tmp_path / "theirs"
    write_rows(base, ("a", 1, 5001, 8001))
    write_rows(ours, ("c", 1, 5003, 8003), ("a", 1, 5001, 8001))
    write_rows(theirs, ("a", 1, 5001, 8001), ("b", 1, 5003, 8003))
    code, stdout, stderr = run("merge-driver", str(base), str(ours), str(theirs))
    assert (code, stdout) == (0, "")
    assert stderr == (
        "portalloc merge-driver: moved b/1 of theirs from 5003/8003 to 5005/8005 (port 5003 is held by c/1 of ours)\n"
    )
    assert rows_of(ours) == [("a", 1, 5001, 8001), ("b", 1, 5005, 8005), ("c", 1, 5003, 8003)]
    assert ours.read_bytes() == dump_ledger(parse_ledger(ours.read_bytes(), ours))


def test_merge_driver_with_an_empty_base(tmp_path: Path) -> None:
    # git's add/add conflict: both branches created the ledger, the base is an empty file.
    base, ours, theirs = tmp_path / "base", tmp_path / "ours", tmp_path / "theirs"
    base.write_bytes(b"")
    write_rows(ours, ("a", 1, 5001, 8001))
    write_rows(theirs, ("b", 1, 5001, 8001))
    assert run("merge-driver", str(base), str(ours), str(theirs))[0] == 0
    assert rows_of(ours) == [("a", 1, 5001, 8001), ("b", 1, 5003, 8003)]


@pytest.mark.parametrize("broken", ["base", "ours", "theirs", "policy"])
def test_merge_driver_leaves_ours_untouched_on_bad_input(tmp_path: Path, broken: str) -> None:
    paths = {name: tmp_path / name for name in ("base", "ours", "theirs")}
    for path in paths.values():
        write_rows(path, ("a", 1, 5001, 8001))
    if broken == "policy":
        # Both sides changed the policy, each its own way.
        write_rows(paths["ours"], ("a", 1, 5001, 8001), policy='{"backend_start": 5001, "step": 4}')
        write_rows(paths["theirs"], ("a", 1, 5001, 8001), policy='{"backend_start": 5001, "step": 6}')
        expected = "different policies"
    else:
        paths[broken].write_text('{"version": 1, "allocations": [\n', encoding="utf-8")
        expected = f"{paths[broken]} is not valid JSON"
    before = paths["ours"].read_bytes()
    code, _, stderr = run("merge-driver", *(str(p) for p in paths.values()))
    assert code == 1
    assert stderr.startswith("Error: ") and expected in stderr and len(stderr.splitlines()) == 1
    assert paths["ours"].read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "ours", "theirs"]  # no lock file either


# --- repair -----------------------------------------------------------------------------


def test_repair_dry_run_then_repair(run_cli: RunCli, ledger_path: Path) -> None:
    broken = write_rows(ledger_path, ("b", 1, 5001, 8001), ("a", 1, 5001, 8001), ("c", 1, 5003, 8003))
    dry = run_cli("repair", "--dry-run")
    assert dry.exit_code == 0
    assert dry.stdout == (
        f"would move a/1 from 5001/8001 to 5005/8005 (port 5001 is held by b/1)\nWould repair {ledger_path}: 1 move.\n"
    )
    assert ledger_path.read_bytes() == broken
    assert run_cli("check").exit_code == 1
    done = run_cli("repair")
    assert done.stdout.startswith("moved a/1 from 5001/8001 to 5005/8005")
    assert rows_of(ledger_path) == [("a", 1, 5005, 8005), ("b", 1, 5001, 8001), ("c", 1, 5003, 8003)]
    assert run_cli("check").exit_code == 0
    again = run_cli("repair")
    assert again.stdout == f"Nothing to repair: no conflicts in {ledger_path}.\n"


def test_repair_leaves_a_clean_ledger_byte_for_byte(run_cli: RunCli, ledger_path: Path) -> None:
    unsorted = write_rows(ledger_path, ("b", 1, 5003, 8003), ("a", 1, 5001, 8001))
    assert run_cli("repair").exit_code == 0
    assert ledger_path.read_bytes() == unsorted


# --- fmt --------------------------------------------------------------------------------


def test_fmt_check_then_fmt(run_cli: RunCli, ledger_path: Path) -> None:
    hand_edited = write_rows(ledger_path, ("b", 1, 5003, 8003), ("a", 1, 5001, 8001))
    check = run_cli("fmt", "--check")
    assert (check.exit_code, check.stdout) == (1, f"{ledger_path}: not canonical; run `portalloc fmt`\n")
    assert ledger_path.read_bytes() == hand_edited
    assert run_cli("fmt").stdout == f"{ledger_path}: reformatted\n"
    assert rows_of(ledger_path) == [("a", 1, 5001, 8001), ("b", 1, 5003, 8003)]
    canonical = ledger_path.read_bytes()
    assert canonical == dump_ledger(
        Ledger(
            allocations=[
                Allocation(model="a", app_num=1, backend=5001, frontend=8001),
                Allocation(model="b", app_num=1, backend=5003, frontend=8003),
            ]
        )
    )
    assert run_cli("fmt").stdout == f"{ledger_path}: already canonical\n"
    assert ledger_path.read_bytes() == canonical
    assert run_cli("fmt", "--check").exit_code == 0


def test_fmt_takes_several_ledgers(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    write_rows(one, ("b", 1, 5003, 8003), ("a", 1, 5001, 8001))
    two.write_bytes(dump_ledger(Ledger()))
    code, stdout, _ = run("fmt", "--check", str(one), str(two))
    assert code == 1
    assert stdout.splitlines() == [f"{one}: not canonical; run `portalloc fmt`", f"{two}: canonical"]


@pytest.mark.parametrize("command", [["repair"], ["repair", "--dry-run"], ["fmt"], ["fmt", "--check"]])
def test_invalid_or_missing_ledger_is_never_written(run_cli: RunCli, ledger_path: Path, command: list[str]) -> None:
    missing = run_cli(*command)
    assert missing.exit_code == 1
    assert missing.stderr == f"Error: there is no ledger at {ledger_path}\n"
    assert not ledger_path.exists()
    bad = b'{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 5001}]}'
    ledger_path.write_bytes(bad)
    result = run_cli(*command)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {ledger_path} is not a valid ledger: ")
    assert ledger_path.read_bytes() == bad


def test_fmt_goes_on_after_a_bad_ledger(tmp_path: Path) -> None:
    one, bad, two = tmp_path / "one.json", tmp_path / "bad.json", tmp_path / "two.json"
    write_rows(one, ("b", 1, 5003, 8003), ("a", 1, 5001, 8001))
    bad.write_text('{"version": 1, "allocations": [\n', encoding="utf-8")
    write_rows(two, ("d", 1, 5003, 8003), ("c", 1, 5001, 8001))
    code, stdout, stderr = run("fmt", str(one), str(bad), str(two))
    assert code == 1
    assert stdout.splitlines() == [f"{one}: reformatted", f"{two}: reformatted"]
    assert stderr.startswith(f"Error: {bad} is not valid JSON") and len(stderr.splitlines()) == 1
    assert rows_of(two) == [("c", 1, 5001, 8001), ("d", 1, 5003, 8003)]
    assert bad.read_text(encoding="utf-8") == '{"version": 1, "allocations": [\n'


def test_fmt_json_reports_every_ledger(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    write_rows(one, ("b", 1, 5003, 8003), ("a", 1, 5001, 8001))
    two.write_bytes(dump_ledger(Ledger()))
    code, stdout, _ = run("fmt", "--check", "--json", str(one), str(two))
    assert code == 1
    assert json.loads(stdout) == [
        {"ledger": str(one), "canonical": False, "reformatted": False},
        {"ledger": str(two), "canonical": True, "reformatted": False},
    ]
    code, stdout, _ = run("fmt", "--json", str(one), str(two))
    assert code == 0
    assert json.loads(stdout) == [
        {"ledger": str(one), "canonical": False, "reformatted": True},
        {"ledger": str(two), "canonical": True, "reformatted": False},
    ]


def test_repair_json(run_cli: RunCli, ledger_path: Path) -> None:
    write_rows(ledger_path, ("b", 1, 5001, 8001), ("a", 1, 5001, 8001))
    moved = [
        {
            "model": "a",
            "app_num": 1,
            "from": {"backend": 5001, "frontend": 8001},
            "to": {"backend": 5003, "frontend": 8003},
            "reason": "port 5001 is held by b/1",
        }
    ]
    dry = run_cli("repair", "--dry-run", "--json")
    assert (dry.exit_code, json.loads(dry.stdout)) == (0, {"ledger": str(ledger_path), "dry_run": True, "moved": moved})
    done = run_cli("repair", "--json")
    assert json.loads(done.stdout) == {"ledger": str(ledger_path), "dry_run": False, "moved": moved}
    again = run_cli("repair", "--json")
    assert json.loads(again.stdout) == {"ledger": str(ledger_path), "dry_run": False, "moved": []}


# --- no lock file unless a write happens ------------------------------------------------


@pytest.mark.parametrize(
    "command", [["check"], ["fmt"], ["fmt", "--check"], ["repair"], ["repair", "--dry-run"], ["list"]]
)
def test_commands_that_do_not_write_leave_no_lock_file(run_cli: RunCli, ledger_path: Path, command: list[str]) -> None:
    ledger_path.write_bytes(
        dump_ledger(Ledger(allocations=[Allocation(model="a", app_num=1, backend=5001, frontend=8001)]))
    )
    assert run_cli(*command).exit_code == 0
    assert sorted(p.name for p in ledger_path.parent.iterdir()) == ["portalloc.json"]


def test_fmt_and_repair_lock_only_to_write(run_cli: RunCli, ledger_path: Path) -> None:
    write_rows(ledger_path, ("b", 1, 5001, 8001), ("a", 1, 5001, 8001))
    assert run_cli("repair").exit_code == 0
    assert (ledger_path.parent / "portalloc.json.lock").exists()


# --- CRLF line ends (git's core.autocrlf=true) ------------------------------------------


def test_a_crlf_ledger_is_read_and_counts_as_canonical(run_cli: RunCli, ledger_path: Path) -> None:
    canonical = dump_ledger(Ledger(allocations=[Allocation(model="a", app_num=1, backend=5001, frontend=8001)]))
    crlf = canonical.replace(b"\n", b"\r\n")
    ledger_path.write_bytes(crlf)
    check = run_cli("fmt", "--check")
    assert (check.exit_code, check.stdout) == (0, f"{ledger_path}: canonical\n")
    assert run_cli("fmt").stdout == f"{ledger_path}: already canonical\n"
    assert ledger_path.read_bytes() == crlf  # not churned: git would convert it back on checkout
    assert run_cli("check").stdout == f"OK: 1 allocation, no conflicts ({ledger_path})\n"
    assert run_cli("get", "a", "1").stdout == "a/1: backend 5001, frontend 8001\n"
    assert ledger_path.read_bytes() == crlf
    # A CRLF ledger that is not canonical otherwise is rewritten canonically, with LF.
    write_rows(ledger_path, ("b", 1, 5003, 8003), ("a", 1, 5001, 8001))
    ledger_path.write_bytes(ledger_path.read_bytes().replace(b"\n", b"\r\n"))
    assert run_cli("fmt", "--check").exit_code == 1
    assert run_cli("fmt").stdout == f"{ledger_path}: reformatted\n"
    assert b"\r" not in ledger_path.read_bytes()
    assert rows_of(ledger_path) == [("a", 1, 5001, 8001), ("b", 1, 5003, 8003)]


# --- merge-driver by hand on a live ledger ----------------------------------------------

#: Allocates g/1..g/N through the API as fast as it can and prints each pair it was given.
ALLOCATOR = """
import json, sys
from portalloc.service.facade import PortAllocationService
service = PortAllocationService(sys.argv[1], probe=False)
print("ready", flush=True)
for app_num in range(1, int(sys.argv[2]) + 1):
    pair = service.get_or_allocate_ports("g", app_num)
    print(json.dumps([app_num, pair.backend, pair.frontend]), flush=True)
"""


def test_merge_driver_by_hand_keeps_what_another_process_allocates(tmp_path: Path) -> None:
    base, live, theirs = tmp_path / "base.json", tmp_path / "portalloc.json", tmp_path / "theirs.json"
    base.write_bytes(dump_ledger(Ledger()))
    live.write_bytes(dump_ledger(Ledger()))
    their_rows = [Allocation(model="t", app_num=n, backend=20000 + 2 * n, frontend=30000 + 2 * n) for n in range(1, 41)]
    theirs.write_bytes(dump_ledger(Ledger(allocations=their_rows)))
    allocator = subprocess.Popen(
        [sys.executable, "-c", ALLOCATOR, str(live), "600"],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    assert allocator.stdout is not None
    assert allocator.stdout.readline() == "ready\n"
    merges = 0
    while allocator.poll() is None and merges < 12:
        done = subprocess.run(
            [portalloc_script(), "merge-driver", str(base), str(live), str(theirs)],
            capture_output=True,
            text=True,
            env=subprocess_env(),
        )
        assert done.returncode == 0, done.stderr
        merges += 1
    handed_out = [json.loads(line) for line in allocator.stdout]
    assert allocator.wait() == 0
    assert merges >= 3 and len(handed_out) == 600  # the merges really ran while it allocated
    final = parse_ledger(live.read_bytes(), live)
    assert find_conflicts(final.allocations) == []
    for app_num, backend, frontend in handed_out:
        row = final.find("g", app_num)
        assert row is not None and row.ports == (backend, frontend), f"g/{app_num} lost or moved"
    assert all(final.find("t", n) is not None for n in range(1, 41))
