"""Storage under a hostile world: git rewriting the ledger, the lock deleted, paths swapped.

* ``run_git_rewrites``: real ``portalloc get`` processes allocate while a real
  ``git checkout -f`` loop replaces the ledger (git unlinks and re-creates work-tree
  files). Every branch holds the same committed rows; an answer that hands out one of
  their ports means a writer took git's unlink for "no ledger" and started afresh.
* ``run_lock_deletion``: a writer is stopped half-way through its read-modify-write,
  lock held; ``git clean -fdX`` deletes the ignored ``*.lock``; a second writer (a
  real ``portalloc get``) locks a new file and writes; the first one resumes. Both
  pairs must be in the ledger and distinct.
* ``run_path_swaps``: a writer is stopped the same way, an unprivileged user who owns
  the ledger's directory swaps the ledger's name for a symlink to a victim file that
  only root may write, the writer resumes: the victim must be untouched.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.processes import child_env, portalloc_script

#: A real writer process (the API) that stops inside its read-modify-write, lock held,
#: after reading, until a line arrives on stdin; it prints its pair or its error as JSON.
_PAUSED_WRITER = r"""
import json, sys
from portalloc.core import allocator
from portalloc.errors import PortallocError
from portalloc.storage.ledger import LedgerFile

path, model, app_num = sys.argv[1], sys.argv[2], int(sys.argv[3])
rounds = []

def change(ledger):
    rounds.append(len(ledger.allocations))
    if len(rounds) == 1:
        print("read", flush=True)
        sys.stdin.readline()
    ledger, (assignment,) = allocator.assign_many(ledger, [(model, app_num)])
    return ledger, assignment

try:
    assignment = LedgerFile(path, lock_timeout=10).update(change)
    a = assignment.allocation
    print(json.dumps({"pair": [a.backend, a.frontend], "rounds": len(rounds)}), flush=True)
except PortallocError as error:
    print(json.dumps({"error": str(error), "rounds": len(rounds)}), flush=True)
"""


class PausedWriter:
    """A writer process stopped after its read, holding the lock; ``resume`` lets it finish."""

    def __init__(self, ledger: Path, model: str, app_num: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _PAUSED_WRITER, str(ledger), model, str(app_num)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line != "read\n":
            raise RuntimeError(f"the paused writer did not get to its read: {line!r} {self.process.stderr}")

    def resume(self) -> dict[str, object]:
        """Let it write; its JSON report (``pair`` or ``error``, and ``rounds`` of read-modify-write)."""
        out, err = self.process.communicate("go\n", timeout=30)
        lines = out.strip().splitlines()
        if self.process.returncode != 0 or not lines:
            return {"error": f"exit {self.process.returncode}: {err.strip()[-300:]}", "crashed": True}
        report: dict[str, object] = json.loads(lines[-1])
        return report


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**child_env(), "GIT_AUTHOR_NAME": "h", "GIT_AUTHOR_EMAIL": "h@x", "GIT_COMMITTER_NAME": "h"}
    env["GIT_COMMITTER_EMAIL"] = "h@x"
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done


def _cli_get(ledger: Path, model: str, app_num: int, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    command = [portalloc_script(), "--ledger", str(ledger), "--lock-timeout", str(timeout), "--no-probe"]
    return subprocess.run(
        [*command, "get", model, str(app_num), "--json"], capture_output=True, text=True, env=child_env()
    )


def _clean_error(stderr: str) -> bool:
    return stderr.startswith("Error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr


# --- git rewrites -----------------------------------------------------------------------


@dataclass
class GitRewriteResult:
    """What writers said while git rewrote the ledger under them."""

    checkouts: int = 0
    answers: int = 0
    #: Answers that handed out a port the committed rows hold: a writer started afresh.
    reused_held: int = 0
    clean_refusals: int = 0
    unclean_failures: int = 0
    git_failures: int = 0
    samples: list[str] = field(default_factory=list)
    #: The ``Error:`` lines of the clean refusals, so that a report can say what they were.
    refusals: list[str] = field(default_factory=list)


def run_git_rewrites(root: Path, *, writers: int, gets_each: int, base_rows: int = 20) -> GitRewriteResult:
    """``writers`` processes each run ``gets_each`` fresh ``portalloc get`` while git checks out in a loop."""
    from portalloc.core.models import Ledger
    from portalloc.service.facade import PortAllocationService
    from portalloc.storage.ledger import LedgerFile

    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "one")
    ledger = repo / "portalloc.json"
    LedgerFile(ledger).create(Ledger())
    service = PortAllocationService(ledger, probe=False)
    held = {port for i in range(base_rows) for port in service.get_or_allocate_ports("base", i + 1).ports}
    _git(repo, "add", "portalloc.json")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "checkout", "-q", "-b", "two")
    # The versions differ, so each checkout rewrites the file; this row's pair is free on
    # branch one, so only the rows both versions hold count as held.
    service.get_or_allocate_ports("branch-two", 1)
    _git(repo, "commit", "-qam", "two")

    result = GitRewriteResult()
    stop = threading.Event()
    guard = threading.Lock()

    def flip() -> None:
        branch = "one"
        while not stop.is_set():
            done = _git(repo, "checkout", "-q", "-f", branch, check=False)
            with guard:
                result.checkouts += 1
                if done.returncode != 0:
                    result.git_failures += 1
                    result.samples.append(f"git checkout {branch}: {done.stderr.strip()[:200]}")
            branch = "two" if branch == "one" else "one"

    def write(worker: int) -> None:
        for n in range(gets_each):
            done = _cli_get(ledger, f"writer-{worker}", n + 1)
            with guard:
                if done.returncode == 0:
                    result.answers += 1
                    row = json.loads(done.stdout)
                    if {row["backend"], row["frontend"]} & held:
                        result.reused_held += 1
                        result.samples.append(f"writer-{worker}/{n + 1} got a held pair: {done.stdout.strip()}")
                elif _clean_error(done.stderr):
                    result.clean_refusals += 1
                    result.refusals.append(done.stderr.strip())
                else:
                    result.unclean_failures += 1
                    result.samples.append(f"writer-{worker}/{n + 1}: exit {done.returncode}: {done.stderr[-300:]}")

    flipper = threading.Thread(target=flip)
    flipper.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    flipper.join()
    return result


# --- the lock deleted while held ----------------------------------------------------------


@dataclass
class LockDeletionResult:
    """Trials of ``git clean -fdX`` removing the lock while a writer holds it."""

    trials: int = 0
    both_present: int = 0
    duplicates: int = 0
    lost: int = 0
    redone: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)


def run_lock_deletion(root: Path, *, trials: int) -> LockDeletionResult:
    """Stop a writer mid-write, delete its lock with ``git clean -fdX``, let another writer in, resume."""
    from portalloc.core.models import Ledger
    from portalloc.storage.codec import parse_ledger
    from portalloc.storage.ledger import LedgerFile
    from portalloc.storage.locking import lock_path

    repo = root / "lock-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("*.lock\n")
    ledger = repo / "portalloc.json"
    LedgerFile(ledger).create(Ledger())
    result = LockDeletionResult()
    for trial in range(trials):
        result.trials += 1
        first = PausedWriter(ledger, "first", trial + 1)
        _git(repo, "clean", "-q", "-fdX")
        if lock_path(ledger).exists():
            result.samples.append(f"trial {trial}: git clean -fdX left the lock file")
        second = _cli_get(ledger, "second", trial + 1)
        report = first.resume()
        if second.returncode != 0 or "pair" not in report:
            result.errors += 1
            result.samples.append(f"trial {trial}: second {second.stderr.strip()!r}, first {report}")
            continue
        if int(str(report["rounds"])) > 1:
            result.redone += 1
        rows = {a.key: a.ports for a in parse_ledger(ledger.read_bytes(), ledger).allocations}
        told = {("first", trial + 1): tuple(report["pair"]), ("second", trial + 1): _pair(second.stdout)}  # type: ignore[arg-type]
        if all(rows.get(key) == pair for key, pair in told.items()):
            result.both_present += 1
        else:
            result.lost += sum(rows.get(key) != pair for key, pair in told.items())
        ports = [port for pair in rows.values() for port in pair]
        result.duplicates += len(ports) - len(set(ports))
    return result


def _pair(stdout: str) -> tuple[int, int]:
    row = json.loads(stdout)
    return row["backend"], row["frontend"]


# --- a symlink swapped in under a writer ------------------------------------------------------


@dataclass
class PathSwapResult:
    """Trials of swapping the ledger's name for a symlink to a victim while a writer holds the lock."""

    trials: int = 0
    victim_changed: int = 0
    refused: int = 0
    samples: list[str] = field(default_factory=list)


def run_path_swaps(*, trials: int) -> PathSwapResult:
    """Stop a writer after its read, put a symlink to a victim file in the ledger's place, resume it.

    Runs under a directory of its own in the system temp directory that anyone may
    traverse (the attacker is not root; pytest's and the harness's scratch are private
    to their owner), removed afterwards.
    """
    root = Path(tempfile.mkdtemp(prefix="portalloc-swaps-"))
    try:
        os.chmod(root, 0o755)
        return _path_swaps(root, trials)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _path_swaps(root: Path, trials: int) -> PathSwapResult:
    from portalloc.core.models import Ledger
    from portalloc.storage.ledger import LedgerFile

    result = PathSwapResult()
    for trial in range(trials):
        # The attacker owns the ledger's directory (as root, an unprivileged user does);
        # the victim lives in a directory only root may write.
        directory, safe = root / f"swap-{trial}", root / f"safe-{trial}"
        directory.mkdir()
        safe.mkdir()
        ledger, victim = directory / "portalloc.json", safe / "victim"
        victim.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
        victim.chmod(0o600)
        before = (victim.read_bytes(), victim.stat())
        LedgerFile(ledger).create(Ledger())
        if os.geteuid() == 0:
            os.chown(directory, _NOBODY, _NOBODY)
        writer = PausedWriter(ledger, "m", 1)
        _as_attacker(functools.partial(_swap_in_symlink, ledger, victim))
        report = writer.resume()
        result.trials += 1
        after = (victim.read_bytes(), victim.stat())
        if after[0] != before[0] or (after[1].st_mode, after[1].st_ino) != (before[1].st_mode, before[1].st_ino):
            result.victim_changed += 1
            result.samples.append(f"trial {trial}: the victim changed: {report}")
        elif "error" in report and not report.get("crashed"):
            result.refused += 1
        else:
            result.samples.append(f"trial {trial}: {report}")
        if (safe / "victim.lock").exists():
            result.samples.append(f"trial {trial}: a lock file appeared beside the victim")
    return result


_NOBODY = 65534


def _swap_in_symlink(ledger: Path, victim: Path) -> None:
    swapped = ledger.with_name("swapped")
    swapped.symlink_to(victim)
    os.replace(swapped, ledger)  # atomically: the ledger's name now links to the victim


def _as_attacker(work: Callable[[], None]) -> None:
    """Run ``work`` as an unprivileged user (uid/gid 65534) in a forked child when we are root, else here."""
    if os.geteuid() != 0:
        work()
        return
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(_NOBODY)
            os.setuid(_NOBODY)
            work()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the unprivileged attacker failed (wait status {status})")
