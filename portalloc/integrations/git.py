"""The one way portalloc runs git: ``run_git`` (the exit status is the caller's answer) and ``git_output``.

Every git call of the package goes through here, so "git is missing" and "git failed"
read the same wherever they happen: a ``GitError`` naming the command and git's last
line of stderr.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from portalloc.errors import GitError


def run_git(directory: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """``git ARGS`` in ``directory``, output captured; a non-zero exit is returned, not raised (it may be an answer).

    Raises ``GitError`` when git is not installed.
    """
    try:
        return subprocess.run(["git", *args], cwd=directory, input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed (no `git` on PATH)") from None


def git_output(directory: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """What ``git ARGS`` prints on stdout; ``GitError`` with git's last line of stderr when it fails."""
    done = run_git(directory, *args, stdin=stdin)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"`git {' '.join(args)}` failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def text(output: bytes) -> str:
    """git's output as text, decoded as the file system decodes names (paths survive any encoding)."""
    return os.fsdecode(output)


def repository_root(directory: Path) -> Path:
    """The top of the work tree that holds ``directory``; ``GitError`` outside a repository."""
    done = run_git(directory, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise GitError(f"{directory} is not inside a git work tree; run git-setup in the repository")
    return Path(text(done.stdout).rstrip("\n"))
