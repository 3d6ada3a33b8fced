"""``host prune`` reads the other copies of a ledger only as regular files (``service/host_admin.py``, ``leasegit``).

A copy the store remembers may since have become anything: a FIFO there once made
``host prune`` wait forever for a writer. Each case runs the real ``portalloc`` (a hang
is a process to stop, not a test to lose), with its own host lease store.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import portalloc_script
from tests.gittools import git, git_env, new_repo, pair

#: Far more than ``host prune`` needs here; reached only when the read blocks.
HANG = 60


def prune_dry_run(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [portalloc_script(), "host", "prune", "--dry-run"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=git_env(),
        timeout=HANG,
    )


def make_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_a_copy_outside_git_that_became_a_fifo_is_left_alone(tmp_path: Path) -> None:
    plain, elsewhere = tmp_path / "plain", tmp_path / "elsewhere"
    plain.mkdir()
    elsewhere.mkdir()
    assert subprocess.run([portalloc_script(), "init"], cwd=plain, env=git_env(), capture_output=True).returncode == 0
    pair(plain, "m", 1)
    make_fifo(plain / "portalloc.json")
    done = prune_dry_run(elsewhere)
    # What a FIFO holds cannot be known, so no lease is ended on its account.
    assert (done.returncode, done.stdout, done.stderr) == (0, "Nothing to prune.\n", "")


def test_a_linked_worktree_whose_ledger_became_a_fifo_does_not_stop_prune(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    assert subprocess.run([portalloc_script(), "init"], cwd=repo, env=git_env(), capture_output=True).returncode == 0
    git(repo, "add", "portalloc.json")
    git(repo, "commit", "-q", "-m", "ledger")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "wt")
    kept = pair(repo, "k", 1)
    git(repo, "commit", "-q", "-am", "k/1")
    from_worktree = pair(tmp_path / "wt", "w", 1)
    make_fifo(tmp_path / "wt" / "portalloc.json")
    done = prune_dry_run(repo)
    assert done.returncode == 0, done.stderr
    # The FIFO holds no ledger: w/1, held nowhere else, is what a prune would end; k/1 is committed.
    assert done.stdout == (
        f"Would end the lease of w/1 ({from_worktree[0]}/{from_worktree[1]}) of {repo / 'portalloc.json'}: "
        "nothing in its repository holds it.\n"
    )
    assert str(kept[0]) not in done.stdout
