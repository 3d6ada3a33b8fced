"""Where the ledger and the pre-configuration live when nobody says.

Kept free of pydantic: the command line resolves paths on every call.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import NamedTuple

from portalloc.core.limits import MAX_GIT_STATE_BYTES
from portalloc.errors import UnsafeFile
from portalloc.storage.files import file_kind, read_regular_file

LEDGER_NAME = "portalloc.json"
#: Looked for beside the ledger, in this order.
CONFIG_NAMES = ("port_config.json", "misc/port_config.json")


def find_ledger(start: Path) -> Path:
    """The default ledger for a command run in ``start``.

    The nearest ``portalloc.json`` in ``start`` or a parent, stopping at the root of
    the git repository; if there is none, ``portalloc.json`` at that repository root,
    or in ``start`` outside a repository.
    """
    start = start.absolute()
    for directory in (start, *start.parents):
        candidate = directory / LEDGER_NAME
        if candidate.exists():
            return candidate
        if is_repository_root(directory):
            return candidate
    return start / LEDGER_NAME


def ledger_creatable(ledger: Path, named: bool) -> bool:
    """Whether a command-line write may create ``ledger`` when it does not exist.

    Only when nobody named the ledger (``named``: ``--ledger`` or ``PORTALLOC_LEDGER``)
    and discovery put it at the root of a git repository: that is the one place a
    team's ledger belongs, and anywhere else a missing ledger is far more likely a
    typo, or the wrong directory, than a wish for a new one (``portalloc init`` makes
    one on purpose).
    """
    return not named and is_repository_root(ledger.parent)


class DefaultConfig(NamedTuple):
    """The default pre-configuration found beside a ledger, and why earlier candidates were passed over."""

    path: Path | None
    #: One line per candidate that exists but cannot be read as a file (a FIFO, a dangling link…).
    skipped: list[str]


def find_config(ledger: Path) -> DefaultConfig:
    """The default pre-configuration: ``port_config.json`` or ``misc/port_config.json`` beside the ledger.

    A candidate that exists but is not a regular file (a dangling symbolic link, a FIFO,
    a device, a directory) is passed over, and said so in ``skipped``: silence would let
    its pre-configured pairs go to other apps unannounced. Only ``stat`` is used, so a
    FIFO is never opened.
    """
    skipped: list[str] = []
    for name in CONFIG_NAMES:
        candidate = ledger.parent / name
        try:
            mode = candidate.stat().st_mode
        except FileNotFoundError:
            if candidate.is_symlink():
                skipped.append(_unusable(candidate, "a dangling symbolic link"))
            continue
        except OSError as error:
            skipped.append(_unusable(candidate, f"unreadable ({error.strerror or error})"))
            continue
        if stat.S_ISREG(mode):
            return DefaultConfig(candidate, skipped)
        skipped.append(_unusable(candidate, file_kind(mode)))
    return DefaultConfig(None, skipped)


def _unusable(path: Path, kind: str) -> str:
    return f"the default pre-configuration {path} is {kind}, not a regular file; it was not read"


#: What git leaves in its directory while it rewrites work-tree files: the index lock
#: (checkout, switch, reset, stash, pull), and the state of a merge, cherry-pick,
#: revert or rebase that stopped half-way.
GIT_OPERATION_MARKERS = ("index.lock", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply")


def is_repository_root(directory: Path) -> bool:
    """Whether ``directory`` is the top of a git work tree (it holds ``.git``, a directory or a worktree's file)."""
    return (directory / ".git").exists()


def git_dir(start: Path) -> Path | None:
    """The git directory of the work tree that holds ``start``, or ``None`` outside a repository."""
    for directory in (start, *start.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            # A linked worktree or a submodule: ".git" is a file saying "gitdir: <path>".
            try:
                data = read_regular_file(dot_git, "git file", MAX_GIT_STATE_BYTES).data
            except (OSError, UnsafeFile):
                return None
            text = data.decode("utf-8", "replace")
            if text.startswith("gitdir:"):
                return directory / text[len("gitdir:") :].strip()
            return None
    return None


def git_operation(start: Path) -> str | None:
    """The marker of a git operation running in the repository that holds ``start`` (``"index.lock"``…), or ``None``."""
    found = git_dir(start)
    if found is None:
        return None
    return next((marker for marker in GIT_OPERATION_MARKERS if (found / marker).exists()), None)
