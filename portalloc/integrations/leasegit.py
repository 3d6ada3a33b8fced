"""What git knows about a leased key: which commit released it, and what the repository still holds.

Asked only off the hot path: when a key with a live lease is missing from its work
tree's ledger (``released_by``), and by ``portalloc host prune`` (``held_texts``).
A key is looked for by its canonical spelling (``storage.ledger.key_text``), which
is exactly what one line of the ledger holds, so git's pickaxe finds the commit that
removed it without parsing any old ledger.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

from portalloc.errors import GitError, PortallocError
from portalloc.integrations.git import git_output, text
from portalloc.storage.codec import key_text
from portalloc.storage.ledgerdir import read_bytes

#: Where a repository can still hold a key: its branches, remote-tracking branches, tags and stash.
_REF_SPACES = ("refs/heads", "refs/remotes", "refs/tags", "refs/stash")


def released_by(top: Path, relative: str, model: str, app_num: int) -> str | None:
    """The commit (``abc1234 subject``) that released the key, if a commit in ``HEAD``'s history did.

    ``None`` when ``HEAD``'s ledger still holds the key (git dropped it from the work
    tree only: a stash, a checkout of the file), when no commit reachable from ``HEAD``
    ever removed it (a branch that never had it, a reset of uncommitted work), or when
    git cannot tell (no commits yet, git missing): a key is never taken away on a guess.
    """
    wanted = key_text(model, app_num)
    try:
        if wanted in _blob(top, f"HEAD:{relative}"):
            return None
        found = git_output(top, "log", "-1", "--format=%h %s", f"-S{wanted}", "HEAD", "--", relative)
    except GitError:
        return None
    line = found.decode("utf-8", "replace").strip()
    return line or None


def _blob(top: Path, revision: str) -> str:
    """The text of ``revision`` (``HEAD:path``), empty when there is no such file."""
    try:
        return git_output(top, "cat-file", "-p", revision).decode("utf-8", "replace")
    except GitError:
        return ""


def held_texts(top: Path, relative: str, work_files: Iterable[Path]) -> str:
    """Every ledger the repository still holds, joined: at each branch, remote-tracking branch, tag,
    stash entry (work tree and index), in each worktree's index, and in ``work_files``.

    A key whose ``key_text`` is not in the result is held by nothing of the repository.
    ``GitError`` if git cannot list the repository's refs (then nothing may be pruned).
    """
    listed = git_output(top, "for-each-ref", "--format=%(objectname)", *_REF_SPACES).decode().split()
    stashes = git_output(top, "stash", "list", "--format=%H").decode().split()
    revisions = [f"{sha}:{relative}" for sha in listed]
    revisions += [f"{sha}:{relative}" for sha in stashes] + [f"{sha}^2:{relative}" for sha in stashes]
    revisions += [f":{relative}"]  # this worktree's index
    texts = [_batch(top, revisions)]
    for work_file in work_files:
        try:
            data = read_bytes(work_file)  # a regular file only: a FIFO there would block the read forever
        except PortallocError:
            continue
        if data is None:
            continue
        texts.append(data.decode("utf-8", "replace"))
        with suppress(GitError):  # that worktree's index
            index = git_output(work_file.parent, "cat-file", "-p", f":./{work_file.name}")
            texts.append(index.decode("utf-8", "replace"))
    return "\n".join(texts)


def _batch(top: Path, revisions: list[str]) -> str:
    """The contents of every revision that exists, through one ``git cat-file --batch``."""
    out = git_output(top, "cat-file", "--batch", stdin="".join(f"{r}\n" for r in revisions).encode())
    texts: list[str] = []
    at = 0
    while at < len(out):
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) == 3 and header[2].isdigit():  # "<sha> <type> <size>"; "<rev> missing" has no body
            size = int(header[2])
            if header[1] == b"blob":
                texts.append(out[at : at + size].decode("utf-8", "replace"))
            at += size + 1
    return "\n".join(texts)


def tracked_ledgers(top: Path, name: str) -> list[str]:
    """The files named ``name`` that the repository at ``top`` tracks, by path in it (``infra/portalloc.json``).

    Asked only when a write would create a new ledger at the root: a ledger moved with
    ``git mv`` is still the repository's one ledger. Empty when git cannot tell.
    """
    try:
        listed = git_output(top, "ls-files", "-z", "--", name, f"**/{name}")
    except GitError:
        return []
    return sorted({path for path in text(listed).split("\0") if path})


def live_worktrees(directory: Path) -> set[Path]:
    """The worktrees of the repository at ``directory`` that git still counts: those ``git worktree list
    --porcelain`` lists and does not mark prunable, or marks prunable but locked (real paths).

    ``GitError`` if git cannot say (then no worktree's pairs may end).
    """
    out = git_output(directory, "worktree", "list", "--porcelain", "-z").decode("utf-8", "surrogateescape")
    live: set[Path] = set()
    # Records are separated by an empty field; each starts with "worktree <path>".
    for record in out.split("\0\0"):
        fields = [field for field in record.split("\0") if field]
        if not fields or not fields[0].startswith("worktree "):
            continue
        names = {field.split(" ", 1)[0] for field in fields[1:]}
        if "prunable" not in names or "locked" in names:
            live.add(Path(os.path.realpath(fields[0][len("worktree ") :])))
    return live
