"""Whole-file rewrites: ``merge-driver``, ``repair`` and ``fmt`` on real files, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from portalloc.cli import cli
from portalloc.ledger import dump_ledger, parse_ledger
from portalloc.models import Allocation, Ledger, PortPolicy
from tests.conftest import RunCli

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
    assert stderr == "portalloc merge-driver: moved b/1 from 5003/8003 to 5005/8005 (port 5003 is held by c/1)\n"
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
