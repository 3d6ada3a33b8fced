"""``git pull`` between two real clones of a bare remote: the allocation already pushed keeps its pair.

The teammate's pushed ``q/1`` may already be serving on its ports; the local, unpushed
allocation that took the same pair is the one that moves, whether the pull merges
(where git calls the local branch "ours") or rebases (where "ours" is the upstream).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import portalloc_script, subprocess_env
from tests.integrations.test_git import rows

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return subprocess_env(
        PATH=f"{Path(portalloc_script()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        PORTALLOC_PROBE="0",
        # The two clones stand for two teammates' machines: this machine's host leases would keep
        # their allocations apart, and the clash the driver settles would never happen.
        PORTALLOC_LEASES="0",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
    )


def runner(where: Path, env: dict[str, str], program: str) -> Run:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([program, *args], cwd=where, env=env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(f"{program} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    return run


@pytest.fixture
def clones(tmp_path: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """``mine`` and ``teammate``: clones of one bare remote whose ledger holds a/1..d/1, driver set up in both."""
    remote = tmp_path / "remote.git"
    runner(tmp_path, env, "git")("init", "-q", "--bare", "-b", "main", str(remote))
    mine, teammate = tmp_path / "mine", tmp_path / "teammate"
    runner(tmp_path, env, "git")("clone", "-q", str(remote), str(mine))
    git, portalloc = runner(mine, env, "git"), runner(mine, env, portalloc_script())
    for key in ("a", "b", "c", "d", "e"):
        portalloc("get", key, "1")
    portalloc("git-setup")
    git("add", "-A")
    git("commit", "-q", "-m", "ledger")
    git("push", "-q", "origin", "main")
    runner(tmp_path, env, "git")("clone", "-q", str(remote), str(teammate))
    runner(teammate, env, portalloc_script())("git-setup")  # the driver's config is per clone
    return mine, teammate


def allocate_and_commit(where: Path, env: dict[str, str], key: str) -> None:
    portalloc, git = runner(where, env, portalloc_script()), runner(where, env, "git")
    portalloc("get", key, "1")
    git("commit", "-q", "-am", f"allocate {key}/1")


@pytest.mark.parametrize("how", ["--no-rebase", "--rebase"])
def test_pull_keeps_the_pushed_pair_and_moves_the_local_one(
    clones: tuple[Path, Path], env: dict[str, str], how: str
) -> None:
    mine, teammate = clones
    allocate_and_commit(teammate, env, "q")  # 5011/8011, pushed: the teammate's app may be running on it
    runner(teammate, env, "git")("push", "-q", "origin", "main")
    allocate_and_commit(mine, env, "p")  # 5011/8011 too, only here
    pull = runner(mine, env, "git")("pull", "--no-edit", how, "origin", "main")
    assert rows(mine)["q/1"] == (5011, 8011)
    assert rows(mine)["p/1"] == (5013, 8013)
    lines = [line for line in pull.stderr.splitlines() if line.startswith("portalloc merge-driver:")]
    # In a merge git calls the local branch "ours"; in a rebase "ours" is the upstream.
    mine_side, pushed_side = (
        ("ours (main)", "theirs (origin/main)")
        if how == "--no-rebase"
        else ('theirs (commit "allocate p/1" of main)', "ours (origin/main)")
    )
    assert lines == [
        f"portalloc merge-driver: {pushed_side} is already published (a remote-tracking branch has it) and "
        f"{mine_side} is not, so {mine_side.split()[0]} moves where the two clash",
        f"portalloc merge-driver: moved p/1 of {mine_side} from 5011/8011 to 5013/8013 "
        f"(port 5011 is held by q/1 of {pushed_side})",
    ]
    assert runner(mine, env, "git")("status", "--porcelain").stdout == ""
    assert runner(mine, env, portalloc_script())("check").returncode == 0


def test_a_merge_of_two_unpublished_branches_keeps_ours(clones: tuple[Path, Path], env: dict[str, str]) -> None:
    """Neither side pushed: the rule without a remote (ours keeps its pair)."""
    mine, _ = clones
    git = runner(mine, env, "git")
    git("checkout", "-q", "-b", "feature")
    allocate_and_commit(mine, env, "q")
    git("checkout", "-q", "main")
    allocate_and_commit(mine, env, "p")
    merge = git("merge", "--no-edit", "feature")
    assert rows(mine)["p/1"] == (5011, 8011) and rows(mine)["q/1"] == (5013, 8013)
    assert [line for line in merge.stderr.splitlines() if "portalloc" in line] == [
        "portalloc merge-driver: moved q/1 of theirs (feature) from 5011/8011 to 5013/8013 "
        "(port 5011 is held by p/1 of ours (main))"
    ]


def test_a_merge_of_two_published_branches_keeps_ours(clones: tuple[Path, Path], env: dict[str, str]) -> None:
    """Both sides pushed (main and a pushed feature branch): neither is preferred, ours keeps its pair."""
    mine, _ = clones
    git = runner(mine, env, "git")
    git("checkout", "-q", "-b", "feature")
    allocate_and_commit(mine, env, "q")
    git("push", "-q", "origin", "feature")
    git("checkout", "-q", "main")
    allocate_and_commit(mine, env, "p")
    git("push", "-q", "origin", "main")
    merge = git("merge", "--no-edit", "origin/feature")
    assert rows(mine)["p/1"] == (5011, 8011) and rows(mine)["q/1"] == (5013, 8013)
    assert [line for line in merge.stderr.splitlines() if "portalloc" in line] == [
        "portalloc merge-driver: moved q/1 of theirs (origin/feature) from 5011/8011 to 5013/8013 "
        "(port 5011 is held by p/1 of ours (main))"
    ]
