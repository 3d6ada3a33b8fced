"""``worktrees: separate`` on the command line: real ``git worktree``s, the CLI in-process where it can be.

``run`` replaces its process (exec), so it runs as a real child; everything else runs
through ``CliRunner`` with ``--ledger`` naming each worktree's copy of the ledger.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portalloc.cli.main import cli
from tests.conftest import portalloc_script, subprocess_env
from tests.gittools import git, new_repo

LEDGER = "portalloc.json"


def run(tree: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--no-probe", "--ledger", str(tree / LEDGER), *args])
    assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture
def trees(tmp_path: Path) -> list[Path]:
    """The main worktree of ``shop`` and two linked ones; the ledger says ``worktrees: separate``."""
    main = new_repo(tmp_path / "shop")
    run(main, "init", "--worktrees", "separate")
    run(main, "get", "model_a", "1")
    git(main, "add", LEDGER)
    git(main, "commit", "-q", "-m", "ledger")
    for name in ("feature-x", "feature-y"):
        git(main, "worktree", "add", "-q", str(tmp_path / name), "-b", name)
    return [main, tmp_path / "feature-x", tmp_path / "feature-y"]


def test_get_env_run_list_in_linked_worktrees_use_their_own_pairs_and_write_nothing(trees: list[Path]) -> None:
    main, one, two = trees
    committed = (one / LEDGER).read_bytes()
    got = json.loads(run(one, "get", "model_a", "1", "--json").stdout)
    assert got == {"model": "model_a", "app_num": 1, "backend": 7999, "frontend": 10999, "worktree": str(one)}
    assert run(one, "get", "model_a", "1").stdout == f"model_a/1: backend 7999, frontend 10999 (worktree {one})\n"
    env = run(two, "env", "model_a", "1", "--format", "dotenv")
    assert env.stdout == "BACKEND_PORT=7997\nFRONTEND_PORT=10997\n"
    assert f"worktree {two}'s own pair" in env.stderr
    assert json.loads(run(main, "get", "model_a", "1", "--json").stdout)["worktree"] is None
    done = subprocess.run(
        [portalloc_script(), "run", "model_a", "1", "--", "sh", "-c", 'echo "$BACKEND_PORT $FRONTEND_PORT"'],
        cwd=one,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (0, "7999 10999\n"), done.stderr
    assert (one / LEDGER).read_bytes() == (two / LEDGER).read_bytes() == committed
    # list: the pairs this worktree uses, marked; --committed: the ledger's.
    assert json.loads(run(one, "list", "--json").stdout)[0]["worktree"] == str(one)
    assert run(one, "list").stdout.splitlines()[1].split() == ["model_a", "1", "7999", "10999", str(one)]
    assert json.loads(run(one, "list", "--committed", "--json").stdout)[0]["backend"] == 5001
    assert json.loads(run(one, "export").stdout)[0]["backend"] == 5001  # an export holds committed pairs only
    assert run(main, "list").stdout.splitlines()[0].split() == ["MODEL", "APP", "BACKEND", "FRONTEND"]


def test_list_never_chooses_a_pair(trees: list[Path]) -> None:
    listed = json.loads(run(trees[1], "list", "--json").stdout)
    assert listed == [{"model": "model_a", "app_num": 1, "backend": 5001, "frontend": 8001, "worktree": None}]
    assert "worktree pair" not in run(trees[1], "host").stdout


def test_env_prints_a_compose_project_per_worktree(trees: list[Path]) -> None:
    names = [run(tree, "env", "model_a", "1", "--compose-project", "--format", "json").stdout for tree in trees]
    assert [json.loads(text)["COMPOSE_PROJECT_NAME"] for text in names] == [
        "shop",
        "shop-feature-x",
        "shop-feature-y",
    ]


def test_host_shows_worktree_pairs_and_prune_ends_them_once_the_worktree_is_removed(trees: list[Path]) -> None:
    main, one, two = trees
    run(one, "get", "model_a", "1")
    run(two, "get", "model_a", "1")
    shown = json.loads(run(main, "host", "--json").stdout)["worktree_pairs"]
    assert [(w["worktree"], w["backend"], w["present"]) for w in shown] == [
        (str(one), 7999, True),
        (str(two), 7997, True),
    ]
    assert "2 worktree pairs" in run(main, "host").stdout
    assert run(main, "host", "prune").stdout == "Nothing to prune.\n"  # both worktrees are live
    git(main, "worktree", "remove", str(one))
    pruned = run(main, "host", "prune", "--dry-run").stdout
    assert f"Would end the own pairs of worktree {one}: model_a/1 (7999/10999)" in pruned
    run(main, "host", "prune")
    assert [w["worktree"] for w in json.loads(run(main, "host", "--json").stdout)["worktree_pairs"]] == [str(two)]
    # Freed: a new linked worktree takes the top pair again.
    git(main, "worktree", "add", "-q", str(main.parent / "feature-z"), "-b", "feature-z")
    assert json.loads(run(main.parent / "feature-z", "get", "model_a", "1", "--json").stdout)["backend"] == 7999


def test_a_locked_worktree_whose_directory_is_gone_keeps_its_pairs(trees: list[Path]) -> None:
    main, one = trees[:2]
    run(one, "get", "model_a", "1")
    git(main, "worktree", "lock", str(one))
    moved = one.parent / "elsewhere"
    one.rename(moved)  # a worktree on a drive that is not mounted now: git keeps it while it is locked
    assert run(main, "host", "prune").stdout == "Nothing to prune.\n"
    git(main, "worktree", "unlock", str(one))
    assert "Ended the own pairs of worktree" in run(main, "host", "prune").stdout


def test_shared_keeps_todays_output(tmp_path: Path) -> None:
    main = new_repo(tmp_path / "shop")
    run(main, "init")
    run(main, "get", "model_a", "1")
    git(main, "add", LEDGER)
    git(main, "commit", "-q", "-m", "ledger")
    git(main, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "wt")
    before = (tmp_path / "wt" / LEDGER).read_bytes()
    assert run(tmp_path / "wt", "get", "model_a", "1").stdout == "model_a/1: backend 5001, frontend 8001\n"
    assert (tmp_path / "wt" / LEDGER).read_bytes() == before


def test_worktrees_starting_at_once_get_different_pairs(trees: list[Path]) -> None:
    # Real processes at the same moment: choosing and leasing a pair is one store transaction.
    more = trees[0].parent / "feature-z"
    git(trees[0], "worktree", "add", "-q", str(more), "-b", "feature-z")
    started = [
        subprocess.Popen(
            [portalloc_script(), "get", "model_a", "1", "--field", "backend"],
            cwd=tree,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tree in [*trees, more]
    ]
    backends = [int(process.communicate(timeout=60)[0]) for process in started]
    assert backends[0] == 5001
    assert sorted(backends[1:]) == [7995, 7997, 7999]


def test_host_sync_moves_a_worktree_pair_a_pulled_row_landed_on(trees: list[Path]) -> None:
    main, one = trees[:2]
    assert json.loads(run(one, "get", "model_a", "1", "--json").stdout)["backend"] == 7999
    text = (main / LEDGER).read_text()
    row = '{"model": "model_z", "app_num": 1, "backend": 7999, "frontend": 10999}'
    (main / LEDGER).write_text(text.replace('"frontend": 8001}', '"frontend": 8001},\n    ' + row))
    git(main, "commit", "-q", "-am", "model_z, from another machine")
    git(one, "merge", "-q", "--no-edit", "main")
    synced = run(one, "host", "sync")
    assert f"Warning: model_a/1 in worktree {one} moved from 7999/10999 to 7997/10997" in synced.stderr
    assert json.loads(run(one, "get", "model_a", "1", "--json").stdout)["backend"] == 7997
