"""The ledger in real git repositories: ``git-setup``, the merge driver, ``check`` as a gate, ``repair``,
and git's corners: octopus merges, rebases, ``core.autocrlf``, lock files.

Every test drives the installed ``portalloc`` script and real ``git`` in a temp
repository; the script's directory is put first on PATH so git finds the driver.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from portalloc.cli.main import cli
from tests.conftest import portalloc_script, subprocess_env

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return git_test_env(home)


def git_test_env(home: Path) -> dict[str, str]:
    """The child environment of these tests: the installed script first on PATH, ``home`` as HOME, leases off."""
    return subprocess_env(
        PATH=f"{Path(portalloc_script()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(home),  # no global git config of the developer's
        GIT_CONFIG_NOSYSTEM="1",
        PORTALLOC_PROBE="0",  # expected pairs must not depend on what this machine happens to listen on
        # Two branches here stand for two teammates' machines: this machine's host leases would
        # (rightly) keep one branch's pairs from the other; tests of leases turn them on (--leases).
        PORTALLOC_LEASES="0",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture
def git(repo: Path, env: dict[str, str]) -> Run:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    run("init", "-q", "-b", "main")
    return run


@pytest.fixture
def portalloc(repo: Path, env: dict[str, str]) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([portalloc_script(), *args], cwd=repo, env=env, capture_output=True, text=True)

    return run


def rows(repo: Path) -> dict[str, tuple[int, int]]:
    """``{"model/app": (backend, frontend)}`` straight from the file's lines."""
    text = (repo / "portalloc.json").read_text(encoding="utf-8")
    found = re.findall(r'"model": "(\w+)", "app_num": (\d+), "backend": (\d+), "frontend": (\d+)', text)
    return {f"{m}/{n}": (int(b), int(f)) for m, n, b, f in found}


def commit(git: Run, message: str) -> None:
    git("add", "-A")
    git("commit", "-q", "-m", message)


def allocate(portalloc: Run, *keys: str) -> None:
    for key in keys:
        model, app_num = key.split("/")
        assert portalloc("get", model, app_num).returncode == 0


def branches(git: Run, portalloc: Run, base: list[str], feature: Callable[[], None], main: Callable[[], None]) -> None:
    """Commit ``base`` allocations on main, then ``feature()`` on a branch and ``main()`` on main."""
    allocate(portalloc, *base)
    commit(git, "base")
    git("checkout", "-q", "-b", "feature")
    feature()
    commit(git, "feature")
    git("checkout", "-q", "main")
    main()
    commit(git, "main")


# --- git-setup --------------------------------------------------------------------------


def test_git_setup_is_idempotent_and_says_what_it_did(repo: Path, git: Run, portalloc: Run) -> None:
    first = portalloc("git-setup")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        ".gitattributes: added 'portalloc.json merge=portalloc eol=lf'",
        ".gitignore: added 'portalloc.json.lock' (the ledger's lock file)",
        "git config merge.portalloc.name: set to 'portalloc ledger merge (union, moves clashing ports)'",
        "git config merge.portalloc.driver: set to 'portalloc merge-driver %O %A %B'",
        ".git/hooks/post-checkout: added 'portalloc host sync' (leases what git brings here)",
        ".git/hooks/post-merge: added 'portalloc host sync' (leases what git brings here)",
    ]
    second = portalloc("git-setup")
    assert second.stdout.splitlines() == [
        ".gitattributes: portalloc.json already has merge=portalloc and LF line ends",
        ".gitignore: portalloc.json.lock is already ignored",
        "git config merge.portalloc.name: already 'portalloc ledger merge (union, moves clashing ports)'",
        "git config merge.portalloc.driver: already 'portalloc merge-driver %O %A %B'",
        ".git/hooks/post-checkout: already runs 'portalloc host sync'",
        ".git/hooks/post-merge: already runs 'portalloc host sync'",
    ]
    assert (repo / ".gitattributes").read_text() == "portalloc.json merge=portalloc eol=lf\n"
    assert (repo / ".gitignore").read_text() == "portalloc.json.lock\n"
    assert git("config", "merge.portalloc.driver").stdout == "portalloc merge-driver %O %A %B\n"


def test_git_setup_for_a_ledger_in_a_subdirectory_with_a_space(repo: Path, git: Run, portalloc: Run) -> None:
    (repo / ".gitattributes").write_bytes(b"*.png binary")  # no final newline
    (repo / "infra dir").mkdir()
    ledger = repo / "infra dir" / "ports[1].json"
    done = portalloc("--ledger", str(ledger), "git-setup")
    assert done.returncode == 0, done.stderr
    assert (
        repo / ".gitattributes"
    ).read_text() == '*.png binary\n"infra dir/ports\\\\[1].json" merge=portalloc eol=lf\n'
    attribute = git("check-attr", "merge", "--", "infra dir/ports[1].json").stdout
    assert attribute == "infra dir/ports[1].json: merge: portalloc\n"
    assert git("check-ignore", "--no-index", "--", "infra dir/ports[1].json.lock").returncode == 0


def test_git_setup_adds_only_what_is_missing_and_says_it_in_json(repo: Path, git: Run, portalloc: Run) -> None:
    (repo / ".gitattributes").write_text("portalloc.json -text\n")  # no line-end conversion at all: enough
    done = portalloc("git-setup", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "repository": str(repo),
        "ledger": "portalloc.json",
        "steps": [
            {"target": ".gitattributes", "changed": True, "detail": "added 'portalloc.json merge=portalloc'"},
            {"target": ".gitignore", "changed": True, "detail": "added 'portalloc.json.lock' (the ledger's lock file)"},
            {
                "target": "git config merge.portalloc.name",
                "changed": True,
                "detail": "set to 'portalloc ledger merge (union, moves clashing ports)'",
            },
            {
                "target": "git config merge.portalloc.driver",
                "changed": True,
                "detail": "set to 'portalloc merge-driver %O %A %B'",
            },
            *(
                {
                    "target": f".git/hooks/{hook}",
                    "changed": True,
                    "detail": "added 'portalloc host sync' (leases what git brings here)",
                }
                for hook in ("post-checkout", "post-merge")
            ),
        ],
    }
    again = json.loads(portalloc("git-setup", "--json").stdout)
    assert [step["changed"] for step in again["steps"]] == [False] * 6
    assert git("check-attr", "merge", "text", "--", "portalloc.json").stdout == (
        "portalloc.json: merge: portalloc\nportalloc.json: text: unset\n"
    )


def test_git_setup_notes_on_stderr_when_portalloc_is_not_on_path(repo: Path, git: Run, env: dict[str, str]) -> None:
    git_dir = Path(shutil.which("git") or "/usr/bin/git").parent
    bare = {**env, "PATH": str(git_dir)}  # git, but no portalloc
    done = subprocess.run(
        [portalloc_script(), "git-setup", "--json"], cwd=repo, env=bare, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert len(json.loads(done.stdout)["steps"]) == 6  # the note is not part of the JSON
    assert done.stderr == (
        "note: `portalloc` is not on PATH here; git runs the driver through the shell, "
        "so it must be on PATH when you merge\n"
    )


def test_git_setup_keeps_a_driver_that_runs_portalloc_by_path(git: Run, portalloc: Run) -> None:
    custom = "/opt/tools/bin/portalloc merge-driver %O %A %B"
    git("config", "merge.portalloc.driver", custom)
    assert f"already '{custom}'" in portalloc("git-setup").stdout
    git("config", "merge.portalloc.driver", "cat %A")
    assert "set to 'portalloc merge-driver %O %A %B' (was 'cat %A')" in portalloc("git-setup").stdout


def test_git_setup_outside_a_repository(tmp_path: Path, env: dict[str, str]) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    done = subprocess.run([portalloc_script(), "git-setup"], cwd=outside, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == f"Error: {outside} is not inside a git work tree; run git-setup in the repository\n"


# --- merging with the driver ------------------------------------------------------------


@pytest.fixture
def driver(git: Run, portalloc: Run) -> None:
    assert portalloc("git-setup").returncode == 0
    commit(git, "use the portalloc merge driver")


@pytest.mark.usefixtures("driver")
def test_branches_that_allocate_different_apps_merge_clean(repo: Path, git: Run, portalloc: Run) -> None:
    branches(
        git,
        portalloc,
        ["a/1", "b/1"],
        feature=lambda: allocate(portalloc, "c/1"),  # takes 5005/8005 on its branch
        main=lambda: allocate(portalloc, "d/1"),  # and so does this one on main
    )
    merge = git("merge", "-q", "--no-edit", "feature")
    assert merge.stderr.splitlines() == [
        "portalloc merge-driver: moved c/1 of theirs (feature) from 5005/8005 to 5007/8007 "
        "(port 5005 is held by d/1 of ours (main))"
    ]
    assert rows(repo) == {"a/1": (5001, 8001), "b/1": (5003, 8003), "c/1": (5007, 8007), "d/1": (5005, 8005)}
    assert git("status", "--porcelain").stdout == ""  # merged and committed, nothing left over
    check = portalloc("check")
    assert (check.returncode, check.stdout) == (0, f"OK: 4 allocations, no conflicts ({repo / 'portalloc.json'})\n")


@pytest.mark.usefixtures("driver")
def test_same_key_allocated_differently_keeps_ours(repo: Path, git: Run, portalloc: Run) -> None:
    branches(
        git,
        portalloc,
        ["a/1"],
        feature=lambda: allocate(portalloc, "c/1"),  # c/1 → 5003
        main=lambda: allocate(portalloc, "x/1", "c/1"),  # x/1 → 5003, c/1 → 5005
    )
    merge = git("merge", "-q", "--no-edit", "feature")
    assert (
        "moved c/1 of theirs (feature) from 5003/8003 to 5005/8005 (both sides allocated it; ours (main) is kept)"
        in merge.stderr
    )
    assert rows(repo) == {"a/1": (5001, 8001), "c/1": (5005, 8005), "x/1": (5003, 8003)}
    assert portalloc("check").returncode == 0


@pytest.mark.usefixtures("driver")
def test_a_release_on_one_side_survives_the_merge(repo: Path, git: Run, portalloc: Run) -> None:
    branches(
        git,
        portalloc,
        ["a/1", "b/1"],
        feature=lambda: portalloc("release", "a", "1"),
        main=lambda: allocate(portalloc, "c/1"),  # main keeps a/1 exactly as it was
    )
    git("merge", "-q", "--no-edit", "feature")
    assert rows(repo) == {"b/1": (5003, 8003), "c/1": (5005, 8005)}
    assert portalloc("check").returncode == 0


@pytest.mark.usefixtures("driver")
def test_both_branches_create_the_ledger(repo: Path, git: Run, portalloc: Run) -> None:
    # add/add: git hands the driver an empty base file.
    git("checkout", "-q", "-b", "feature")
    allocate(portalloc, "c/1")
    commit(git, "feature creates the ledger")
    git("checkout", "-q", "main")
    allocate(portalloc, "d/1")
    commit(git, "main creates the ledger")
    git("merge", "-q", "--no-edit", "feature")
    assert rows(repo) == {"c/1": (5003, 8003), "d/1": (5001, 8001)}


@pytest.mark.usefixtures("driver")
def test_an_invalid_side_is_left_to_the_user_as_a_conflict(repo: Path, git: Run, portalloc: Run) -> None:
    ledger = repo / "portalloc.json"

    def break_it() -> None:
        ledger.write_text(ledger.read_text().replace('"backend": 5003', '"backend": "5003"'))

    branches(git, portalloc, ["a/1", "b/1"], feature=break_it, main=lambda: allocate(portalloc, "c/1"))
    ours = ledger.read_bytes()
    merge = git("merge", "-q", "--no-edit", "feature", check=False)
    assert merge.returncode != 0
    assert "Error: theirs (feature) is not a valid ledger: " in merge.stderr
    assert ".merge_file_" not in merge.stderr  # git's temp file names mean nothing to a user
    assert "portalloc.json" in git("diff", "--name-only", "--diff-filter=U").stdout
    assert ledger.read_bytes() == ours


@pytest.mark.usefixtures("driver")
def test_a_rebase_reports_only_what_each_replayed_commit_changed(repo: Path, git: Run, portalloc: Run) -> None:
    allocate(portalloc, "a/1", "b/1")
    commit(git, "base")
    git("checkout", "-q", "-b", "feature")
    allocate(portalloc, "x/1")  # 5005
    commit(git, "x/1")
    allocate(portalloc, "y/1")  # 5007
    commit(git, "y/1")
    git("checkout", "-q", "main")
    allocate(portalloc, "z/1")  # 5005
    commit(git, "z/1")
    git("checkout", "-q", "feature")
    rebase = git("rebase", "main")
    moves = [line for line in rebase.stderr.splitlines() if line.startswith("portalloc merge-driver:")]
    # Replaying "y/1", x/1 differs between ours (moved to 5007) and theirs, but that commit never
    # touched it: no "both sides allocated it".
    assert moves == [
        'portalloc merge-driver: moved x/1 of theirs (commit "x/1" of feature) from 5005/8005 to 5007/8007 '
        "(port 5005 is held by z/1 of ours (HEAD))",
        'portalloc merge-driver: moved y/1 of theirs (commit "y/1" of feature) from 5007/8007 to 5009/8009 '
        "(port 5007 is held by x/1 of ours (HEAD))",
    ]
    assert rows(repo) == {
        "a/1": (5001, 8001),
        "b/1": (5003, 8003),
        "x/1": (5007, 8007),
        "y/1": (5009, 8009),
        "z/1": (5005, 8005),
    }
    assert git("status", "--porcelain", "--untracked-files=all").stdout == ""


@pytest.mark.usefixtures("driver")
def test_a_cherry_pick_names_the_sides_it_knows(repo: Path, git: Run, portalloc: Run) -> None:
    branches(
        git, portalloc, ["a/1"], feature=lambda: allocate(portalloc, "c/1"), main=lambda: allocate(portalloc, "d/1")
    )
    pick = git("cherry-pick", "feature")
    # git leaves no name for the picked commit where a merge driver can read it.
    assert "portalloc merge-driver: moved c/1 of theirs from 5003/8003 to 5005/8005 " in pick.stderr
    assert "(port 5003 is held by d/1 of ours (main))" in pick.stderr
    assert rows(repo) == {"a/1": (5001, 8001), "c/1": (5005, 8005), "d/1": (5003, 8003)}


@pytest.mark.usefixtures("driver")
def test_an_octopus_merge_never_runs_the_driver_so_check_and_repair_guard_it(
    repo: Path, git: Run, portalloc: Run
) -> None:
    allocate(portalloc, "a/1", "k/1", "m/1", "n/1")
    commit(git, "base")
    for branch, key in (("one", "b/1"), ("two", "z/1")):  # b/1 sorts after a/1, z/1 after n/1: far apart
        git("checkout", "-q", "-b", branch, "main")
        allocate(portalloc, key)  # both 5009/8009
        commit(git, key)
    git("checkout", "-q", "main")
    octopus = git("merge", "--no-edit", "one", "two")
    assert "Merge made by the 'octopus' strategy." in octopus.stdout
    assert "portalloc merge-driver" not in octopus.stdout + octopus.stderr  # git never ran it
    assert rows(repo)["b/1"] == rows(repo)["z/1"] == (5009, 8009)
    check = portalloc("check")
    assert check.returncode == 1 and "conflict: port 5009 is used by b/1 (backend) and z/1 (backend)" in check.stdout
    repair = portalloc("repair")
    assert repair.stdout.splitlines()[0] == "moved z/1 from 5009/8009 to 5011/8011 (port 5009 is held by b/1)"
    assert portalloc("check").returncode == 0
    assert len(rows(repo)) == 6


def test_with_autocrlf_a_checked_out_ledger_passes_fmt_and_check(repo: Path, git: Run, portalloc: Run) -> None:
    git("config", "core.autocrlf", "true")  # Git for Windows' default
    allocate(portalloc, "a/1", "b/1")
    (repo / "portalloc.json.lock").unlink()  # this repository has no git-setup: no ignore rule
    commit(git, "ledger")
    ledger = repo / "portalloc.json"
    ledger.unlink()
    git("checkout", "--", "portalloc.json")
    assert b"\r\n" in ledger.read_bytes()  # git really wrote CRLF
    crlf = ledger.read_bytes()
    fmt = portalloc("fmt", "--check")
    assert (fmt.returncode, fmt.stdout) == (0, f"{ledger}: canonical\n")
    assert portalloc("check").stdout == f"OK: 2 allocations, no conflicts ({ledger})\n"
    assert portalloc("get", "a", "1").stdout == "a/1: backend 5001, frontend 8001\n"
    assert ledger.read_bytes() == crlf
    # git-setup marks the ledger eol=lf: a fresh checkout is LF, whatever autocrlf says.
    assert portalloc("git-setup").returncode == 0
    commit(git, "git-setup")
    ledger.unlink()
    git("checkout", "--", "portalloc.json")
    assert b"\r" not in ledger.read_bytes()
    assert portalloc("fmt", "--check").returncode == 0
    assert git("status", "--porcelain").stdout == ""


def test_reading_commands_leave_no_lock_file_in_a_repository_without_git_setup(
    repo: Path, git: Run, portalloc: Run
) -> None:
    allocate(portalloc, "a/1")
    (repo / "portalloc.json.lock").unlink()  # the write made it; no rule ignores it here
    commit(git, "ledger")
    for command in (["check"], ["fmt"], ["fmt", "--check"], ["repair"], ["repair", "--dry-run"], ["get", "a", "1"]):
        assert portalloc(*command).returncode == 0, command
    assert git("status", "--porcelain", "--untracked-files=all").stdout == ""


# --- without the driver: check is the guard, repair the fix -----------------------------


def test_plain_merge_that_duplicates_ports_is_caught_by_check_and_fixed_by_repair(
    repo: Path, git: Run, portalloc: Run
) -> None:
    # Far-apart lines, so git's textual merge is clean and silently doubles a pair.
    branches(
        git,
        portalloc,
        ["a/1", "k/1", "m/1", "n/1"],
        feature=lambda: allocate(portalloc, "b/1"),  # 5009, inserted after a/1
        main=lambda: allocate(portalloc, "z/1"),  # 5009 too, appended after n/1
    )
    assert git("merge", "-q", "--no-edit", "feature").returncode == 0
    assert rows(repo)["b/1"] == rows(repo)["z/1"] == (5009, 8009)
    check = portalloc("check")
    assert check.returncode == 1
    assert check.stdout.splitlines() == [
        "conflict: port 5009 is used by b/1 (backend) and z/1 (backend)",
        "conflict: port 8009 is used by b/1 (frontend) and z/1 (frontend)",
        f"2 conflicts in {repo / 'portalloc.json'}",
    ]
    repair = portalloc("repair")
    assert repair.returncode == 0
    assert repair.stdout.splitlines()[0] == "moved z/1 from 5009/8009 to 5011/8011 (port 5009 is held by b/1)"
    assert rows(repo)["b/1"] == (5009, 8009) and rows(repo)["z/1"] == (5011, 8011)
    assert len(rows(repo)) == 6
    assert portalloc("check").returncode == 0


# --- check as a gate --------------------------------------------------------------------


@pytest.mark.usefixtures("git")  # a repository: its root is where a first write may create the ledger
def test_check_takes_the_ledger_paths_pre_commit_passes(repo: Path, portalloc: Run) -> None:
    good, bad = repo / "portalloc.json", repo / "sub" / "portalloc.json"
    bad.parent.mkdir()
    allocate(portalloc, "a/1")
    bad.write_text('{"version": 1, "allocations": [\n')
    assert portalloc("check", str(good)).returncode == 0
    done = portalloc("check", str(good), str(bad))
    assert done.returncode == 1
    assert done.stdout == f"OK: 1 allocation, no conflicts ({good})\n"
    assert done.stderr.startswith(f"Error: {bad} is not valid JSON")


def test_pre_commit_hooks_name_real_commands() -> None:
    hooks = (Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    entries = re.findall(r"^\s+entry: portalloc (\S+)", hooks, re.MULTILINE)
    assert entries == ["check", "fmt"]
    assert all(cli.get_command(click.Context(cli), name) is not None for name in entries)
    assert hooks.count("pass_filenames: true") == len(entries)


def test_git_setup_appends_to_a_shell_hook_and_leaves_any_other_hook_alone(
    repo: Path, git: Run, portalloc: Run
) -> None:
    hooks = repo / ".git" / "hooks"
    (hooks / "post-checkout").write_text("#!/bin/bash\necho mine\n")
    (hooks / "post-merge").write_text("#!/usr/bin/env python3\nprint('mine')\n")
    done = portalloc("git-setup")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert ".git/hooks/post-checkout: appended 'portalloc host sync' (leases what git brings here)" in lines
    assert any(
        line.startswith(".git/hooks/post-merge: is not a shell script, so it was left as it is") for line in lines
    )
    assert (hooks / "post-checkout").read_text().startswith("#!/bin/bash\necho mine\n")
    assert "portalloc host sync" in (hooks / "post-checkout").read_text()
    assert (hooks / "post-merge").read_text() == "#!/usr/bin/env python3\nprint('mine')\n"


def test_git_setup_refuses_a_hook_that_is_a_fifo_in_one_line(repo: Path, git: Run, env: dict[str, str]) -> None:
    """A hook read like every other file portalloc reads: a FIFO there once made git-setup wait forever."""
    fifo = repo / ".git" / "hooks" / "post-checkout"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    done = subprocess.run(
        [portalloc_script(), "git-setup"], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: git hook {fifo} is not a regular file (a FIFO); refusing to read it\n"


def test_the_post_checkout_hook_leases_the_rows_a_checkout_brings(repo: Path, git: Run, portalloc: Run) -> None:
    assert portalloc("init").returncode == 0
    assert portalloc("git-setup").returncode == 0
    git("add", "-A")
    commit(git, "ledger")
    git("checkout", "-q", "-b", "other")
    assert portalloc("get", "theirs", "1").stdout == "theirs/1: backend 5001, frontend 8001\n"  # leases off
    commit(git, "a row this machine never leased (made with leases off, as on a teammate's machine)")
    git("checkout", "-q", "main")
    git("checkout", "-q", "other")  # the hook leases theirs/1 here
    git("checkout", "-q", "main")
    assert portalloc("--leases", "get", "mine", "1").stdout == "mine/1: backend 5003, frontend 8003\n"


def test_git_setup_reads_gitattributes_as_every_file_is_read(repo: Path, git: Run, portalloc: Run) -> None:
    # git check-attr skips a .gitattributes that is a directory; git-setup reads it through
    # the bounded regular-file reader, which names what it is. (A FIFO there hangs git itself.)
    (repo / ".gitattributes").mkdir()
    done = portalloc("git-setup")
    assert done.returncode == 1
    shown = repo / ".gitattributes"
    assert done.stderr == f"Error: git file {shown} is not a regular file (a directory); refusing to read it\n"
    assert not (repo / ".gitignore").exists()


# --- the one git runner (portalloc/integrations/git.py) -----------------------------------


def test_the_git_runner_answers_raises_and_names_a_missing_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from portalloc.errors import GitError
    from portalloc.integrations.git import git_output, repository_root, run_git

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "sub").mkdir()
    assert repository_root(repo / "sub").resolve() == repo.resolve()
    assert run_git(repo, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0  # an answer, not an error
    assert (
        git_output(repo, "hash-object", "--stdin", stdin=b"x\n").strip() == b"587be6b4c3f93f93c489c0111bba5596147a26cb"
    )
    with pytest.raises(GitError, match=r"^`git cat-file -p nope` failed: fatal: Not a valid object name nope$"):
        git_output(repo, "cat-file", "-p", "nope")
    with pytest.raises(GitError, match="is not inside a git work tree"):
        repository_root(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GitError, match=r"^git is not installed \(no `git` on PATH\)$"):
        run_git(repo, "status")
