"""Where a ledger may come into being: ``LedgerFile.create``, ``portalloc init``, and the CLI's creation rule.

A command-line write creates a missing ledger only at the default discovered location
(the root of the git repository). A mistyped ``--ledger`` or ``PORTALLOC_LEDGER``, or a
write outside any repository, is one ``Error:`` line that names ``portalloc init``,
and nothing is created: no ledger, no lock file. The API keeps creating.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from portalloc.core.models import Ledger, PortPolicy
from portalloc.errors import LedgerExists, LedgerMissing
from portalloc.service.facade import PortAllocationService
from portalloc.storage.codec import dump_ledger, parse_ledger
from portalloc.storage.ledger import LedgerFile
from tests.conftest import portalloc_script, subprocess_env


def _portalloc(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [portalloc_script(), *args], cwd=cwd, capture_output=True, text=True, env=subprocess_env(**env)
    )


def _git_init(directory: Path) -> None:
    subprocess.run(["git", "init", "-q", str(directory)], check=True)


def test_create_writes_the_canonical_bytes_and_refuses_an_existing_file(ledger_path: Path) -> None:
    policy = PortPolicy(backend_start=6001, frontend_start=9001)
    LedgerFile(ledger_path).create(Ledger(policy=policy))
    data = ledger_path.read_bytes()
    assert data == dump_ledger(Ledger(policy=policy))
    with pytest.raises(LedgerExists, match="already exists"):
        LedgerFile(ledger_path).create(Ledger())
    assert ledger_path.read_bytes() == data
    assert sorted(p.name for p in ledger_path.parent.iterdir()) == ["portalloc.json"]  # no temp file left


def test_create_does_not_replace_a_dangling_symlinks_target_that_exists(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    link = tmp_path / "portalloc.json"
    link.symlink_to(target)
    LedgerFile(link).create(Ledger())  # creates the target; the link stays a link
    assert link.is_symlink() and parse_ledger(target.read_bytes(), target).allocations == []
    with pytest.raises(LedgerExists):
        LedgerFile(link).create(Ledger())


def test_init_creates_then_refuses(tmp_path: Path) -> None:
    ledger = tmp_path / "team.json"
    done = _portalloc(tmp_path, "init", str(ledger))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"Created {ledger}: 1,494 usable pairs (1,500 in range, 6 skipped for a bad port), "
        "backend 5001+, frontend 8001+, step 2, max 65535\n"
    )
    before = ledger.read_bytes()
    again = _portalloc(tmp_path, "init", str(ledger))
    assert again.returncode == 1
    assert (
        again.stderr
        == f"Error: {ledger} already exists; it was left as it was ('portalloc policy set' changes its policy)\n"
    )
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("how", ["--ledger", "PORTALLOC_LEDGER"])
def test_a_typo_in_the_ledger_path_creates_nothing(tmp_path: Path, how: str) -> None:
    _git_init(tmp_path)
    assert _portalloc(tmp_path, "get", "app", "1").returncode == 0  # the real ledger, at the repository root
    before = (tmp_path / "portalloc.json").read_bytes()
    typo = tmp_path / "portaloc.json"
    if how == "--ledger":
        done = _portalloc(tmp_path, "--ledger", str(typo), "get", "newapp", "1")
    else:
        done = _portalloc(tmp_path, "get", "newapp", "1", PORTALLOC_LEDGER=str(typo))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"Error: there is no ledger at {typo}; create one with `portalloc init {typo}`")
    assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git", "portalloc.json", "portalloc.json.lock"]
    assert (tmp_path / "portalloc.json").read_bytes() == before


def test_outside_a_repository_a_write_needs_init(tmp_path: Path) -> None:
    done = _portalloc(tmp_path, "get", "app", "1")
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: there is no ledger at {tmp_path / 'portalloc.json'}; create one with")
    assert list(tmp_path.iterdir()) == []
    assert _portalloc(tmp_path, "init").returncode == 0  # init at the discovered default
    assert _portalloc(tmp_path, "get", "app", "1").stdout == "app/1: backend 5001, frontend 8001\n"


def test_at_the_repository_root_the_first_write_creates_the_ledger(tmp_path: Path) -> None:
    _git_init(tmp_path)
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)
    done = _portalloc(deep, "get", "app", "1")
    assert (done.returncode, done.stdout) == (0, "app/1: backend 5001, frontend 8001\n")
    assert [a.key for a in parse_ledger((tmp_path / "portalloc.json").read_bytes(), "x").allocations] == [("app", 1)]


@pytest.mark.parametrize("command", [("list", "--json"), ("stats",), ("export",), ("policy",), ("release", "m", "1")])
def test_reads_of_a_mistyped_ledger_are_an_error_and_create_nothing(tmp_path: Path, command: tuple[str, ...]) -> None:
    ledger = tmp_path / "none.json"
    done = _portalloc(tmp_path, "--ledger", str(ledger), *command)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"Error: there is no ledger at {ledger}; create one with `portalloc init {ledger}` "
        "(a write starts one by itself only at the root of the git repository)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_reads_at_the_repository_root_answer_before_the_first_write(tmp_path: Path) -> None:
    _git_init(tmp_path)
    done = _portalloc(tmp_path, "list", "--json")
    assert (done.returncode, done.stdout) == (0, "[]\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git"]


def test_the_api_creates_unless_told_not_to(tmp_path: Path) -> None:
    assert PortAllocationService(tmp_path / "a.json").get_or_allocate_ports("m", 1).ports == (5001, 8001)
    with pytest.raises(LedgerMissing, match="portalloc init"):
        PortAllocationService(tmp_path / "b.json", create_ledger=False).get_or_allocate_ports("m", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.json.lock"]
