"""Real git repositories and the real ``portalloc`` command for tests of what git does to a work tree."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import portalloc_script, subprocess_env


def git_env(**extra: str) -> dict[str, str]:
    """The test's child environment (its own state directory) with a git identity and no user git config."""
    return subprocess_env(
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        **extra,
    )


def git(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """``git ARGS`` in ``cwd``; its stdout (stripped). Raises with git's stderr when ``check`` and it fails."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env or git_env())
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def new_repo(path: Path) -> Path:
    """A git repository at ``path`` with one empty commit on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "commit", "-q", "--allow-empty", "-m", "start")
    return path


def portalloc(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``portalloc ARGS`` in ``cwd`` (ledger discovered from there unless ``--ledger``)."""
    return subprocess.run([portalloc_script(), *args], cwd=cwd, capture_output=True, text=True, env=env or git_env())


def pair(cwd: Path, model: str, app_num: int, env: dict[str, str] | None = None) -> tuple[int, int]:
    """``portalloc get MODEL APP_NUM`` in ``cwd``, which must succeed: the pair.

    One call with ``--json`` (not one ``--field`` call per port): a process costs more than
    anything else in these tests, and the pair comes back from a single allocation.
    """
    done = portalloc(cwd, "get", model, str(app_num), "--json", env=env)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    return row["backend"], row["frontend"]
