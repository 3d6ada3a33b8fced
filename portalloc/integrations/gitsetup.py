"""Git plumbing: ``portalloc git-setup`` (attributes, ignored lock, driver config) and what
the merge driver asks git about the merge it runs in.

Everything goes through the ``git`` command, so git itself decides what a pattern
matches, and every step first asks git whether it is already done (idempotence).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from portalloc.core.limits import MAX_GIT_STATE_BYTES
from portalloc.errors import GitError, UnsafeFile
from portalloc.integrations.git import git_output, repository_root, run_git, text
from portalloc.storage.files import read_regular_file
from portalloc.storage.locking import lock_name

DRIVER = "portalloc"
DRIVER_NAME = "portalloc ledger merge (union, moves clashing ports)"
DRIVER_COMMAND = "portalloc merge-driver %O %A %B"
#: An existing driver that runs portalloc's merge driver some other way (an absolute path, say) is kept.
_OUR_DRIVER = re.compile(r"(^|[\s/])portalloc(\.exe)?(\s+-m\s+portalloc)?\s+merge-driver\s+%O\s+%A\s+%B\s*$")
_GLOB_CHARS = re.compile(r"([\\*?\[])")
#: The attributes git-setup gives the ledger. ``eol=lf``: with ``core.autocrlf=true`` (Git
#: for Windows' default) git would otherwise check the ledger out with CRLF line ends.
ATTRIBUTES = {"merge": DRIVER, "eol": "lf"}
#: git's own name for the temp files it hands a merge driver (ll-merge.c, since git 1.5).
_GIT_TEMP_FILE = re.compile(r"\.merge_file_[A-Za-z0-9]{6}")
#: How much of a replayed commit's subject a merge message quotes.
_SUBJECT_WIDTH = 50


class Step(NamedTuple):
    """One thing git-setup made sure of: where, whether it changed anything, and what it found or did."""

    target: str
    changed: bool
    detail: str

    def line(self) -> str:
        """``target: detail``, as git-setup prints it."""
        return f"{self.target}: {self.detail}"


class GitSetup(NamedTuple):
    """What ``set_up_git`` did: the repository, the ledger's path in it, each step, and notes for the user."""

    root: Path
    ledger: PurePosixPath
    steps: list[Step]
    notes: list[str]


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


def _attributes(root: Path, relative: PurePosixPath, names: list[str]) -> dict[str, str]:
    fields = text(git_output(root, "check-attr", "-z", *names, "--", relative.as_posix())).split("\0")
    # -z gives "path NUL attribute NUL value NUL" for each attribute asked for.
    return {fields[index + 1]: fields[index + 2] for index in range(0, len(fields) - 2, 3)}


def _missing_attributes(root: Path, relative: PurePosixPath) -> dict[str, str]:
    found = _attributes(root, relative, [*ATTRIBUTES, "text"])
    missing = {name: value for name, value in ATTRIBUTES.items() if found.get(name) != value}
    if found.get("text") == "unset":
        missing.pop("eol", None)  # "-text" (or "binary"): git never converts line ends at all
    return missing


def _read_if_present(path: Path, what: str) -> bytes | None:
    """``path``'s bytes if it is a regular file (else ``UnsafeFile``: a FIFO would block), ``None`` if absent."""
    try:
        return read_regular_file(path, what, MAX_GIT_STATE_BYTES).data
    except FileNotFoundError:
        return None


def _append_line(path: Path, line: str) -> None:
    existing = _read_if_present(path, "git file") or b""
    separator = b"" if not existing or existing.endswith(b"\n") else b"\n"
    with path.open("ab") as handle:
        handle.write(separator + line.encode("utf-8") + b"\n")


def _ensure_attributes(root: Path, relative: PurePosixPath) -> Step:
    missing = _missing_attributes(root, relative)
    if not missing:
        return Step(".gitattributes", False, f"{relative} already has merge={DRIVER} and LF line ends")
    settings = (f"{name}={value}" for name, value in missing.items())
    line = " ".join([path_pattern(relative, quote_spaces=True), *settings])
    _append_line(root / ".gitattributes", line)
    still = _missing_attributes(root, relative)
    if still:
        wrong = " ".join(f"{name}={value}" for name, value in still.items())
        return Step(
            ".gitattributes",
            True,
            f"added '{line}', but git still does not see {wrong} for {relative}; "
            "a nested .gitattributes or .git/info/attributes overrides it",
        )
    return Step(".gitattributes", True, f"added '{line}'")


def _ensure_lock_ignored(root: Path, relative: PurePosixPath) -> Step:
    lock = relative.with_name(lock_name(relative.name))
    if run_git(root, "check-ignore", "-q", "--no-index", "--", lock.as_posix()).returncode == 0:
        return Step(".gitignore", False, f"{lock} is already ignored")
    line = path_pattern(lock, quote_spaces=False)
    _append_line(root / ".gitignore", line)
    return Step(".gitignore", True, f"added '{line}' (the ledger's lock file)")


#: The hooks that lease what git brought into the work tree (``portalloc host sync``).
HOOKS = ("post-checkout", "post-merge")
#: What marks a hook as one portalloc already runs in.
_HOOK_MARK = "portalloc host sync"
_SHELLS = re.compile(rb"^#!\s*(/usr/bin/env\s+)?(/bin/|/usr/bin/)?(sh|bash|dash|zsh|ksh)\b")


def hook_line(relative: PurePosixPath) -> str:
    """The hook's command: lease the ledger's rows, never failing the git command (a hook's exit is ignored)."""
    ledger = "" if relative == PurePosixPath("portalloc.json") else f"--ledger {shlex.quote(relative.as_posix())} "
    return f"command -v portalloc >/dev/null 2>&1 && portalloc {ledger}host sync >/dev/null 2>&1 || true"


def _ensure_hook(root: Path, name: str, relative: PurePosixPath) -> Step:
    """Add ``portalloc host sync`` to hook ``name``: a new hook, or a line appended to a shell hook.

    A hook in another language (or a hook manager's binary) is not touched: the step
    says what to add by hand.
    """
    hooks = Path(text(git_output(root, "rev-parse", "--path-format=absolute", "--git-path", "hooks")).strip())
    path = hooks / name
    inside = os.path.relpath(path, os.path.realpath(root))
    shown = str(path) if inside.startswith("..") else inside  # a worktree's hooks live in the main repository
    line = hook_line(relative)
    try:
        existing = _read_if_present(path, "git hook")
        if existing is not None and _HOOK_MARK.encode() in existing:
            return Step(shown, False, "already runs 'portalloc host sync'")
        if existing is not None and not _SHELLS.match(existing):
            return Step(shown, False, f"is not a shell script, so it was left as it is; add '{line}' to it yourself")
        hooks.mkdir(parents=True, exist_ok=True)
        if existing is None:
            path.write_text(f"#!/bin/sh\n# portalloc: lease the ledger's rows this {name[5:]} brought here\n{line}\n")
        else:
            _append_line(path, line)
        path.chmod(path.stat().st_mode | 0o111)
    except OSError as error:
        raise GitError(f"cannot write the {name} hook {path}: {error.strerror or error}") from None
    done = "added" if existing is None else "appended"
    return Step(shown, True, f"{done} '{_HOOK_MARK}' (leases what git brings here)")


def _ensure_config(root: Path, name: str, value: str, keep: re.Pattern[str] | None = None) -> Step:
    current = text(run_git(root, "config", "--local", "--get", name).stdout).rstrip("\n")
    if current == value or (current and keep is not None and keep.search(current)):
        return Step(f"git config {name}", False, f"already '{current}'")
    git_output(root, "config", "--local", name, value)
    return Step(f"git config {name}", True, f"set to '{value}'" + (f" (was '{current}')" if current else ""))


def set_up_git(ledger_path: Path, directory: Path) -> GitSetup:
    """Install the merge driver and the host-lease hooks for ``ledger_path`` in the repository holding ``directory``.

    Adds ``<ledger> merge=portalloc eol=lf`` to the root ``.gitattributes``,
    ``<ledger>.lock`` to the root ``.gitignore``, ``merge.portalloc.name``/``.driver``
    to the repository's config, and ``portalloc host sync`` to the ``post-checkout``
    and ``post-merge`` hooks (so rows a checkout or a merge brings are leased on this
    machine), each only if it is not already there. Returns what each step did or
    found. Raises ``GitError`` outside a repository or for a ledger outside it.
    """
    root = repository_root(directory)
    # Resolve the directory, not the file: the attribute is for the path git tracks, even a symlink.
    ledger = Path(os.path.realpath(ledger_path.absolute().parent)) / ledger_path.name
    try:
        relative = PurePosixPath(ledger.relative_to(os.path.realpath(root)).as_posix())
    except ValueError:
        raise GitError(f"the ledger {ledger_path} is outside the repository {root}") from None
    steps = [
        _ensure_attributes(root, relative),
        _ensure_lock_ignored(root, relative),
        # The name is only a description: any the user chose is kept.
        _ensure_config(root, f"merge.{DRIVER}.name", DRIVER_NAME, keep=re.compile(".")),
        _ensure_config(root, f"merge.{DRIVER}.driver", DRIVER_COMMAND, keep=_OUR_DRIVER),
        *(_ensure_hook(root, name, relative) for name in HOOKS),
    ]
    notes = []
    if shutil.which("portalloc") is None:
        notes.append(
            "`portalloc` is not on PATH here; git runs the driver through the shell, "
            "so it must be on PATH when you merge"
        )
    return GitSetup(root, relative, steps, notes)


def is_git_temp_file(path: Path) -> bool:
    """Whether ``path`` is one of the temp files git hands a merge driver (``.merge_file_XXXXXX``).

    git writes them for the driver alone, so nobody else writes them at the same time;
    any other file given as OURS may be a live ledger.
    """
    return _GIT_TEMP_FILE.fullmatch(path.name) is not None


class MergeSides(NamedTuple):
    """What the merge git is running calls its sides, and which side is already published."""

    ours: str
    theirs: str
    #: ``"ours"`` or ``"theirs"`` when only that side's commit is reachable from a
    #: remote-tracking branch or the upstream; ``""`` when both, neither, or unknown.
    published: str = ""


def merge_sides(directory: Path) -> MergeSides:
    """The sides of the merge git runs in ``directory`` (``ours (main)``, ``theirs (feature)``), which is published.

    git 2.39 gives a merge driver no branch names (``%X``/``%Y`` came later), so they
    are read where git leaves them: ``git merge`` exports ``GITHEAD_<sha>=<branch>`` for
    what it merges, and a rebase keeps the branch and the commit it replays in
    ``rebase-merge/``. A side whose name cannot be found is plain "ours" or "theirs".
    Ours is ``HEAD``; theirs is the merged or replayed commit (a cherry-pick leaves
    none, so nothing is called published there).
    """
    head = text(run_git(directory, "symbolic-ref", "--short", "-q", "HEAD").stdout).strip()
    merged = sorted(
        (value, name.removeprefix("GITHEAD_"))
        for name, value in os.environ.items()
        if name.startswith("GITHEAD_") and value
    )
    step = _rebase_step(directory) if not merged else None
    if merged:
        # ``git pull`` merges a fetched commit by id: its remote-tracking branch is the name to show.
        theirs = ", ".join(_remote_name(directory, value) if value == sha else value for value, sha in merged)
        their_commit = merged[0][1] if len(merged) == 1 else ""
    else:
        theirs, their_commit = (step.label, step.commit) if step else ("", "")
    ours = f"ours ({head or _remote_name(directory, 'HEAD')})"
    theirs = f"theirs ({theirs})" if theirs else "theirs"
    if not their_commit:
        return MergeSides(ours, theirs)
    # A rebase detaches HEAD: the upstream is the rebased branch's.
    refs = ["refs/remotes/", *_upstream(directory, head or (step.branch if step else ""))]
    ours_published, theirs_published = (_published(directory, commit, refs) for commit in ("HEAD", their_commit))
    if ours_published == theirs_published:
        return MergeSides(ours, theirs)
    return MergeSides(ours, theirs, "ours" if ours_published else "theirs")


def _remote_name(directory: Path, commit: str) -> str:
    """The remote-tracking branch at ``commit`` (``origin/main``), else ``commit`` as given."""
    done = run_git(
        directory, "for-each-ref", "--count=1", "--format=%(refname:short)", f"--points-at={commit}", "refs/remotes/"
    )
    return text(done.stdout).strip() or commit


def _upstream(directory: Path, branch: str) -> list[str]:
    """The full ref name of ``branch``'s upstream (it may be a local branch), or nothing."""
    if not branch:
        return []
    done = run_git(directory, "rev-parse", "-q", "--symbolic-full-name", f"{branch}@{{upstream}}")
    name = text(done.stdout).strip()
    return [name] if done.returncode == 0 and name else []


def _published(directory: Path, commit: str, refs: list[str]) -> bool:
    """Whether ``commit`` is reachable from one of ``refs`` (full names or prefixes ending in ``/``)."""
    done = run_git(directory, "for-each-ref", "--count=1", "--format=%(refname)", f"--contains={commit}", *refs)
    return done.returncode == 0 and bool(done.stdout.strip())


class _Step(NamedTuple):
    """The commit a rebase is replaying: its branch, its (abbreviated) id and a label a user recognises."""

    branch: str
    commit: str
    label: str


def _rebase_step(directory: Path) -> _Step | None:
    state = text(run_git(directory, "rev-parse", "--git-path", "rebase-merge").stdout).strip()
    if not state:
        return None
    folder = directory / state
    try:
        head_name = read_regular_file(folder / "head-name", "rebase state", MAX_GIT_STATE_BYTES).data
        done = read_regular_file(folder / "done", "rebase state", MAX_GIT_STATE_BYTES).data.decode().splitlines()
        branch = head_name.decode().strip().removeprefix("refs/heads/")
    except (OSError, UnicodeDecodeError, UnsafeFile):
        return None  # only a label and a preference: a merge never fails for want of it
    # The last line of "done" is the step being replayed: "pick <sha> <subject>". The
    # subject, not the sha, is what a user recognises (git's own conflict label has both).
    step = done[-1].split(maxsplit=2) if done else []
    if len(step) < 3:
        return _Step(branch, "", branch)
    subject = step[2] if len(step[2]) <= _SUBJECT_WIDTH else step[2][: _SUBJECT_WIDTH - 1] + "…"
    return _Step(branch, step[1], f"commit {json.dumps(subject, ensure_ascii=False)} of {branch}")
