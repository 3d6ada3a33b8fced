"""Which ledger a ledger file is, for this machine's host leases: its repository and its path in it.

A ledger's identity is its git repository plus the ledger's path relative to the top of
the work tree; outside git, the ledger's real path. The repository is named by a random
id kept in its git *common* directory (``<common>/portalloc-id``), so every linked
worktree, branch and stash of one repository shares it, a repository moved or reached
through another mount keeps it, and two clones (two common directories) are two
repositories. A submodule has its own git directory, so it is its own repository.

It is worked out from the files git keeps, without spawning git (a write pays for it):
``.git`` is a directory, or a file ``gitdir: <path>`` (linked worktrees, submodules);
the git directory's ``commondir`` file names the common directory. ``GIT_DIR``,
``GIT_WORK_TREE`` and ``GIT_COMMON_DIR`` are honoured as git honours them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import NamedTuple

#: The file in a repository's common git directory that names it for portalloc.
ID_FILE = "portalloc-id"


class LedgerIdentity(NamedTuple):
    """A ledger as this machine's lease store knows it.

    ``key`` is the identity itself: ``git:<repository id>:<path in the work tree>`` or
    ``path:<real path>``. ``top`` is the work tree holding this copy of the ledger and
    ``relative`` the ledger's path in it (both ``None`` outside git); ``common_dir`` is
    the repository's common git directory. ``worktree`` is ``top`` when that is a linked
    worktree (``git worktree add``: its git directory is not the common one), else ``None``
    (the main worktree, a bare ``GIT_DIR``, outside git).
    """

    key: str
    ledger: Path
    repository: str | None = None
    common_dir: Path | None = None
    top: Path | None = None
    relative: str | None = None
    worktree: Path | None = None

    @property
    def in_git(self) -> bool:
        """Whether the ledger lives in a git work tree."""
        return self.repository is not None


def identify(ledger_path: Path, env: Mapping[str, str] | None = None) -> LedgerIdentity:
    """The identity of the ledger at ``ledger_path`` (which need not exist yet; its directory should).

    May create ``<common>/portalloc-id`` (once per repository); where that directory
    cannot be written, the repository is named by the common directory's real path.
    """
    env = os.environ if env is None else env
    real = Path(os.path.realpath(ledger_path))
    found = _git_location(real.parent, env)
    if found is None:
        return LedgerIdentity(key=f"path:{real}", ledger=real)
    git_dir, top = found
    try:
        relative = str(PurePosixPath(real.relative_to(top)))
    except ValueError:  # GIT_DIR names a repository whose work tree does not hold the ledger
        return LedgerIdentity(key=f"path:{real}", ledger=real)
    common = _common_dir(git_dir, env)
    repository = repository_id(common)
    return LedgerIdentity(
        key=f"git:{repository}:{relative}",
        ledger=real,
        repository=repository,
        common_dir=common,
        top=top,
        relative=relative,
        # A linked worktree's git directory is <common>/worktrees/<name>; a submodule's has no commondir.
        worktree=top if git_dir != common else None,
    )


def _git_location(directory: Path, env: Mapping[str, str]) -> tuple[Path, Path] | None:
    """``(git directory, top of the work tree)`` for a file in ``directory``, or ``None`` outside git."""
    if env.get("GIT_DIR"):
        git_dir = Path(os.path.realpath(env["GIT_DIR"]))
        # As git does: GIT_WORK_TREE, else (GIT_DIR set) the current directory is the top.
        top = Path(os.path.realpath(env.get("GIT_WORK_TREE") or os.getcwd()))
        return git_dir, top
    for candidate in (directory, *directory.parents):
        dot_git = candidate / ".git"
        if dot_git.is_dir():
            return Path(os.path.realpath(dot_git)), candidate
        if dot_git.is_file():
            target = _gitdir_file(dot_git)
            return (Path(os.path.realpath(candidate / target)), candidate) if target else None
    return None


def _gitdir_file(dot_git: Path) -> str | None:
    """The path a ``.git`` file names (``gitdir: ../.git/worktrees/x``), or ``None`` if it names none."""
    try:
        text = dot_git.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    first = text.splitlines()[0] if text else ""
    if not first.startswith("gitdir:"):
        return None
    return first[len("gitdir:") :].strip() or None


def _common_dir(git_dir: Path, env: Mapping[str, str]) -> Path:
    """The repository's common git directory: ``GIT_COMMON_DIR``, else what ``commondir`` names, else ``git_dir``."""
    if env.get("GIT_COMMON_DIR"):
        return Path(os.path.realpath(env["GIT_COMMON_DIR"]))
    try:
        named = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    return Path(os.path.realpath(git_dir / named)) if named else git_dir


def repository_id(common_dir: Path) -> str:
    """The id kept in ``common_dir``, made on first use; the directory's real path if it cannot be kept.

    Made by an exclusive link of a complete temp file, so two processes that start at
    once agree on one id.
    """
    path = common_dir / ID_FILE
    known = _read_id(path)
    if known is not None:
        return known
    temp = common_dir / f".{ID_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
    try:
        temp.write_text(os.urandom(16).hex() + "\n", encoding="ascii")
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process named the repository first: its id is the one
        finally:
            temp.unlink()
    except OSError:  # a read-only repository: named by where it is, which is all that is left
        return f"dir-{common_dir}"
    return _read_id(path) or f"dir-{common_dir}"


def _read_id(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text if text.isalnum() and 0 < len(text) <= 64 else None
