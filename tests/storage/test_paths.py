"""Default ledger and pre-configuration discovery."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from portalloc.storage.paths import find_config, find_ledger, git_dir, git_operation, ledger_creatable
from tests.conftest import RunCli


def test_outside_a_repository_the_ledger_is_in_the_current_directory(tmp_path: Path) -> None:
    assert find_ledger(tmp_path) == tmp_path / "portalloc.json"


def test_inside_a_repository_the_ledger_is_at_its_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)
    assert find_ledger(deep) == tmp_path / "portalloc.json"


def test_the_nearest_existing_ledger_wins(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "portalloc.json").write_text("{}")
    assert find_ledger(tmp_path / "sub") == tmp_path / "sub" / "portalloc.json"


def test_the_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "portalloc.json").write_text("{}")  # outside the repository below
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert find_ledger(repo) == repo / "portalloc.json"


def test_config_beside_the_ledger_then_in_misc(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    assert find_config(ledger) == (None, [])
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "port_config.json").write_text("[]")
    assert find_config(ledger) == (tmp_path / "misc" / "port_config.json", [])
    (tmp_path / "port_config.json").mkdir()  # passed over, and said so
    path, skipped = find_config(ledger)
    assert path == tmp_path / "misc" / "port_config.json" and "is a directory, not a regular file" in skipped[0]
    (tmp_path / "port_config.json").rmdir()
    (tmp_path / "port_config.json").write_text("[]")
    assert find_config(ledger) == (tmp_path / "port_config.json", [])


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def test_git_operation_sees_what_real_git_leaves(tmp_path: Path) -> None:
    _git("init", "-q", str(tmp_path))
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert git_dir(deep) == tmp_path / ".git"
    assert git_operation(deep) is None
    (tmp_path / ".git" / "index.lock").touch()  # what a running checkout, stash or reset holds
    assert git_operation(deep) == "index.lock"
    (tmp_path / ".git" / "index.lock").unlink()
    (tmp_path / ".git" / "rebase-merge").mkdir()  # a rebase stopped half-way
    assert git_operation(deep) == "rebase-merge"


def test_git_operation_in_a_linked_worktree_reads_its_own_git_dir(tmp_path: Path) -> None:
    main = tmp_path / "main"
    _git("init", "-q", "-b", "main", str(main))
    _git("-C", str(main), "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "x")
    linked = tmp_path / "linked"
    _git("-C", str(main), "worktree", "add", "-q", str(linked), "-b", "side")
    found = git_dir(linked)
    assert found is not None and found.resolve() == (main / ".git" / "worktrees" / "linked").resolve()
    (found / "MERGE_HEAD").write_text("0" * 40 + "\n")  # a merge stopped in that worktree only
    assert git_operation(linked) == "MERGE_HEAD"
    assert git_operation(main) is None


def test_only_an_unnamed_ledger_at_a_repository_root_may_be_created(tmp_path: Path) -> None:
    assert not ledger_creatable(tmp_path / "portalloc.json", named=False)  # no repository
    _git("init", "-q", str(tmp_path))
    assert ledger_creatable(tmp_path / "portalloc.json", named=False)
    assert not ledger_creatable(tmp_path / "portalloc.json", named=True)  # --ledger or PORTALLOC_LEDGER
    (tmp_path / "sub").mkdir()
    assert not ledger_creatable(tmp_path / "sub" / "portalloc.json", named=False)


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # a reader that opens it blocking would hang for ever


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "gone.json")


def _device(path: Path) -> None:
    path.symlink_to("/dev/zero")


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize(
    ("make", "kind"), [(_fifo, "a FIFO"), (_dangling, "a dangling symbolic link"), (_device, "a character device")]
)
def test_a_default_config_that_cannot_be_used_is_a_warning_naming_it(
    run_cli: RunCli, ledger_path: Path, make: Callable[[Path], None], kind: str
) -> None:
    """It was silently ignored: its pre-configured pair then went to another app unannounced."""
    config = ledger_path.parent / "port_config.json"
    make(config)
    result = run_cli("get", "model_a", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"Warning: the default pre-configuration {config} is {kind}, not a regular file; it was not read"
    ]
    assert result.stdout.startswith("model_a/1: backend 5001")
