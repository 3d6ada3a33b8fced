"""Git plumbing for ``portalloc git-setup``: the merge attribute, the ignored lock, the driver config.

Everything goes through the ``git`` command, so git itself decides what a pattern
matches, and every step first asks git whether it is already done (idempotence).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from portalloc.errors import GitError

DRIVER = "portalloc"
DRIVER_NAME = "portalloc ledger merge (union, moves clashing ports)"
DRIVER_COMMAND = "portalloc merge-driver %O %A %B"
#: An existing driver that runs portalloc's merge driver some other way (an absolute path, say) is kept.
_OUR_DRIVER = re.compile(r"(^|[\s/])portalloc(\.exe)?(\s+-m\s+portalloc)?\s+merge-driver\s+%O\s+%A\s+%B\s*$")
_GLOB_CHARS = re.compile(r"([\\*?\[])")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed (no `git` on PATH)") from None


def _git_ok(root: Path, *args: str) -> str:
    done = _git(root, *args)
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise GitError(f"`git {' '.join(args)}` failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def repository_root(directory: Path) -> Path:
    """The top of the work tree that holds ``directory``; ``GitError`` outside a repository."""
    done = _git(directory, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise GitError(f"{directory} is not inside a git work tree; run git-setup in the repository")
    return Path(done.stdout.rstrip("\n"))


def path_pattern(relative: PurePosixPath, *, quote_spaces: bool) -> str:
    """A gitattributes/gitignore pattern matching exactly ``relative`` (glob characters escaped).

    gitattributes splits a line at whitespace, so there a path with spaces is written
    C-quoted; gitignore takes spaces as they are (only a trailing one needs escaping).
    """
    pattern = _GLOB_CHARS.sub(r"\\\1", relative.as_posix())
    if quote_spaces and (any(char.isspace() for char in pattern) or pattern.startswith('"')):
        return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if pattern.endswith(" "):
        pattern = pattern[:-1] + "\\ "
    return pattern


def _merge_attribute(root: Path, relative: PurePosixPath) -> str:
    fields = _git_ok(root, "check-attr", "-z", "merge", "--", relative.as_posix()).split("\0")
    return fields[2] if len(fields) > 2 else "unspecified"


def _append_line(path: Path, line: str) -> None:
    existing = path.read_bytes() if path.exists() else b""
    separator = b"" if not existing or existing.endswith(b"\n") else b"\n"
    with path.open("ab") as handle:
        handle.write(separator + line.encode("utf-8") + b"\n")


def _ensure_attribute(root: Path, relative: PurePosixPath) -> str:
    if _merge_attribute(root, relative) == DRIVER:
        return f".gitattributes: {relative} already uses merge={DRIVER}"
    line = f"{path_pattern(relative, quote_spaces=True)} merge={DRIVER}"
    _append_line(root / ".gitattributes", line)
    now = _merge_attribute(root, relative)
    if now != DRIVER:
        return (
            f".gitattributes: added '{line}', but git still reports merge={now} for {relative}; "
            "a nested .gitattributes or .git/info/attributes overrides it"
        )
    return f".gitattributes: added '{line}'"


def _ensure_lock_ignored(root: Path, relative: PurePosixPath) -> str:
    lock = PurePosixPath(f"{relative}.lock")
    if _git(root, "check-ignore", "-q", "--no-index", "--", lock.as_posix()).returncode == 0:
        return f".gitignore: {lock} is already ignored"
    line = path_pattern(lock, quote_spaces=False)
    _append_line(root / ".gitignore", line)
    return f".gitignore: added '{line}' (the ledger's lock file)"


def _ensure_config(root: Path, name: str, value: str, keep: re.Pattern[str] | None = None) -> str:
    current = _git(root, "config", "--local", "--get", name).stdout.rstrip("\n")
    if current == value or (current and keep is not None and keep.search(current)):
        return f"git config {name}: already '{current}'"
    _git_ok(root, "config", "--local", name, value)
    return f"git config {name}: set to '{value}'" + (f" (was '{current}')" if current else "")


def set_up_git(ledger_path: Path, directory: Path) -> list[str]:
    """Install the portalloc merge driver for ``ledger_path`` in the repository holding ``directory``.

    Adds ``<ledger> merge=portalloc`` to the root ``.gitattributes``, ``<ledger>.lock``
    to the root ``.gitignore``, and ``merge.portalloc.name``/``.driver`` to the
    repository's config, each only if git does not already see it. Returns one line
    per step saying what was done or found. Raises ``GitError`` outside a repository
    or for a ledger outside it.
    """
    root = repository_root(directory)
    # Resolve the directory, not the file: the attribute is for the path git tracks, even a symlink.
    ledger = Path(os.path.realpath(ledger_path.absolute().parent)) / ledger_path.name
    try:
        relative = PurePosixPath(ledger.relative_to(os.path.realpath(root)).as_posix())
    except ValueError:
        raise GitError(f"the ledger {ledger_path} is outside the repository {root}") from None
    steps = [
        _ensure_attribute(root, relative),
        _ensure_lock_ignored(root, relative),
        # The name is only a description: any the user chose is kept.
        _ensure_config(root, f"merge.{DRIVER}.name", DRIVER_NAME, keep=re.compile(".")),
        _ensure_config(root, f"merge.{DRIVER}.driver", DRIVER_COMMAND, keep=_OUR_DRIVER),
    ]
    if shutil.which("portalloc") is None:
        steps.append(
            "note: `portalloc` is not on PATH here; git runs the driver through the shell, "
            "so it must be on PATH when you merge"
        )
    return steps
