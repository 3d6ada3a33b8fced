"""What git does to a work tree never hands a port out twice: the issue-18 reproductions, with the real
``portalloc`` and real git repositories, worktrees, clones, stashes and branches (each test has its own
host lease store, ``PORTALLOC_STATE_DIR``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import obey_file_permissions, portalloc_script
from tests.gittools import git, git_env, new_repo, pair, portalloc


def committed_repo(path: Path) -> Path:
    """A repository whose ledger (made by ``portalloc init``) is committed."""
    repo = new_repo(path)
    assert portalloc(repo, "init").returncode == 0
    git(repo, "add", "portalloc.json")
    git(repo, "commit", "-q", "-m", "ledger")
    return repo


def commit_all(repo: Path, message: str) -> None:
    git(repo, "commit", "-q", "-am", message)


def test_linked_worktrees_never_share_a_port(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    trees = [repo]
    for name in ("wt1", "wt2"):
        git(repo, "worktree", "add", "-q", str(tmp_path / name), "-b", name)
        trees.append(tmp_path / name)
    pairs = [pair(tree, f"agent_{i}", 1) for i, tree in enumerate(trees)]
    ports = [port for p in pairs for port in p]
    assert len(set(ports)) == 6, pairs  # on main: 5001/8001 three times


def test_clones_submodules_unrelated_repositories_and_plain_directories_never_share_a_port(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    git(tmp_path, "clone", "-q", str(repo), str(tmp_path / "clone"))
    unrelated = new_repo(tmp_path / "unrelated")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert portalloc(plain, "init").returncode == 0  # init outside git
    env = git_env(GIT_ALLOW_PROTOCOL="file")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(unrelated), "sub", env=env)
    pairs = [pair(where, "m", 1) for where in (repo, tmp_path / "clone", unrelated, plain, repo / "sub")]
    assert len({port for p in pairs for port in p}) == 10, pairs


def test_git_stash_never_hands_the_stashed_pair_to_another_key_and_the_key_comes_back(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    first = pair(repo, "a", 1)
    git(repo, "stash", "-q")
    assert '"a"' not in (repo / "portalloc.json").read_text()
    assert pair(repo, "b", 1) != first  # on main: b/1 got a/1's pair
    assert pair(repo, "a", 1) == first  # git dropped it, no commit released it: it comes back
    data = json.loads((repo / "portalloc.json").read_text())
    assert {(r["model"], r["backend"]) for r in data["allocations"]} == {("a", first[0]), ("b", pair(repo, "b", 1)[0])}


def test_host_recover_puts_back_every_dropped_key_at_once(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    pairs = {key: pair(repo, *key) for key in [("a", 1), ("a", 2)]}
    git(repo, "checkout", "-q", "--", "portalloc.json")  # a reset of uncommitted work
    done = portalloc(repo, "host", "recover")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"Recovered a/{n} ({p[0]}/{p[1]})." for (_, n), p in pairs.items()]
    assert portalloc(repo, "host", "recover").stdout.startswith("Nothing to recover")


def test_switching_branches_keeps_the_other_branch_s_ports_and_brings_the_key_back(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    git(repo, "branch", "y")
    git(repo, "checkout", "-q", "-b", "x")
    on_x = pair(repo, "a", 1)
    commit_all(repo, "a/1")
    git(repo, "checkout", "-q", "y")  # y never had a/1
    assert pair(repo, "b", 1) != on_x  # on main: b/1 got 5001 on y, and the merge driver moved one later
    assert pair(repo, "a", 1) == on_x  # no commit on y released it


def test_a_key_released_upstream_is_not_brought_back(tmp_path: Path) -> None:
    origin = committed_repo(tmp_path / "origin")
    git(origin, "checkout", "-q", "-b", "side")  # pushes go to main, which is then not checked out there
    mine = tmp_path / "mine"
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(mine))
    theirs = tmp_path / "theirs"
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(theirs))
    old = pair(mine, "a", 1)
    commit_all(mine, "a/1")
    git(mine, "push", "-q", "origin", "main")
    git(theirs, "pull", "-q", "--rebase")
    assert portalloc(theirs, "release", "a", "1").returncode == 0
    commit_all(theirs, "release a/1")
    git(theirs, "push", "-q", "origin", "main")
    git(mine, "pull", "-q", "--rebase")
    done = portalloc(mine, "get", "a", "1")
    assert done.returncode == 0, done.stderr
    assert "released by commit" in done.stderr and "release a/1" in done.stderr
    assert f"{old[0]}/{old[1]}" in done.stderr
    leases = json.loads(portalloc(mine, "host", "--json", "--model", "a").stdout)["leases"]
    assert [(lease["app_num"], lease["live"]) for lease in leases] == [(1, True)]  # the old lease ended, a new one


def test_prune_after_rm_rf_of_a_clone_and_git_worktree_remove(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    git(tmp_path, "clone", "-q", str(repo), str(tmp_path / "clone"))
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "wt")
    from_clone = pair(tmp_path / "clone", "c", 1)
    from_worktree = pair(tmp_path / "wt", "w", 1)
    kept = pair(repo, "k", 1)
    commit_all(repo, "k/1")
    shutil.rmtree(tmp_path / "clone")
    git(repo, "worktree", "remove", "--force", str(tmp_path / "wt"))
    dry = portalloc(repo, "host", "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(dry.stdout.splitlines()) == sorted(
        [
            f"Would end the lease of c/1 ({from_clone[0]}/{from_clone[1]}) of {tmp_path / 'clone' / 'portalloc.json'}: "
            "its work tree is gone.",
            f"Would end the lease of w/1 ({from_worktree[0]}/{from_worktree[1]}) of {repo / 'portalloc.json'}: "
            "nothing in its repository holds it.",
        ]
    )
    assert portalloc(repo, "host", "prune").stdout.replace("Ended", "Would end") == dry.stdout
    live = json.loads(portalloc(repo, "host", "--json").stdout)["leases"]
    assert [(lease["model"], lease["backend"]) for lease in live] == [("k", kept[0])]
    assert portalloc(repo, "host", "prune").stdout == "Nothing to prune.\n"


def test_host_lists_who_holds_a_port_and_the_ports_two_ledgers_both_claim(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for where in (one, two):
        where.mkdir()
        assert portalloc(where, "--no-leases", "init").returncode == 0
        assert portalloc(where, "--no-leases", "get", "m", "1").returncode == 0  # both 5001: before leases
    for where in (one, two):
        assert portalloc(where, "host", "sync").returncode == 0
    shown = portalloc(tmp_path, "host", "--port", "5001")
    assert shown.returncode == 0, shown.stderr
    assert f"clash: port 5001 is claimed by m/1 of {one / 'portalloc.json'}, m/1 of {two / 'portalloc.json'}" in (
        shown.stdout
    )
    checked = portalloc(one, "check", "--host")
    assert checked.returncode == 1
    assert f"live: port 5001 of m/1 is also leased to m/1 of {two / 'portalloc.json'}" in checked.stdout
    assert portalloc(one, "check").returncode == 0  # the ledger itself is clean: only --host looks at the machine
    shown = portalloc(one, "status")
    assert shown.returncode == 0, shown.stderr
    assert f"  port 5001 of m/1 is also leased to m/1 of {two / 'portalloc.json'}" in shown.stdout.splitlines()
    dry = portalloc(one, "repair", "--host", "--dry-run")
    assert dry.stdout == (
        "would move m/1 from 5001/8001 to 5003/8003 (another ledger has leased its port on this machine)\n"
    )
    assert portalloc(one, "repair", "--host").stdout == dry.stdout.replace("would move", "moved")
    assert pair(one, "m", 1) == (5003, 8003) and pair(two, "m", 1) == (5001, 8001)
    assert portalloc(one, "check", "--host").returncode == 0
    assert portalloc(one, "repair", "--host").stdout.startswith("Nothing to repair")


def test_no_home_an_unwritable_or_a_foreign_store_reads_work_and_writes_say_one_error(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    first = pair(repo, "a", 1)
    before = (repo / "portalloc.json").read_bytes()
    no_home = {k: v for k, v in git_env().items() if k not in ("PORTALLOC_STATE_DIR", "HOME", "XDG_STATE_HOME")}
    store = Path(os.environ["PORTALLOC_STATE_DIR"])
    foreign = tmp_path / "foreign"
    shutil.copytree(store, foreign)
    for path in (foreign, *foreign.iterdir()):
        os.chown(path, 65534, 65534)
    read_only = tmp_path / "read-only-home"
    read_only.mkdir(mode=0o500)
    for env in (no_home, git_env(PORTALLOC_STATE_DIR=str(foreign)), git_env(PORTALLOC_STATE_DIR=str(read_only / "s"))):
        assert pair(repo, "a", 1, env=env) == first  # a read needs no store
        assert portalloc(repo, "list", env=env).returncode == 0
        assert portalloc(repo, "check", env=env).returncode == 0
        for args in (("get", "b", "1"), ("release", "a", "1")):
            done = subprocess.run(
                [portalloc_script(), *args],
                cwd=repo,
                capture_output=True,
                text=True,
                env=env,
                preexec_fn=obey_file_permissions,  # root, too, may not write a read-only home
            )
            assert done.returncode == 1 and done.stdout == ""
            assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("Error: "), done.stderr
            assert "PORTALLOC_STATE_DIR" in done.stderr and "PORTALLOC_LEASES=0" in done.stderr
        assert (repo / "portalloc.json").read_bytes() == before


@pytest.mark.parametrize("flag", [("--no-leases",), ()])
def test_leases_off_is_today_s_allocation(tmp_path: Path, flag: tuple[str, ...]) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    env = git_env(PORTALLOC_LEASES="0") if not flag else git_env()
    for where in (one, two):
        where.mkdir()
        assert portalloc(where, *flag, "init", env=env).returncode == 0
        assert portalloc(where, *flag, "get", "m", "1", "--json", env=env).stdout.count("5001") == 1
    assert not (Path(env["PORTALLOC_STATE_DIR"]) / "leases.sqlite3").exists()


# --- git racing writers (bounded loops) ---------------------------------------------------

WRITER = """
import subprocess, sys
script, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for n in range(1, count + 1):
    done = subprocess.run([script, "get", prefix, str(n), "--json"], capture_output=True, text=True)
    if done.returncode == 0:
        print(done.stdout.replace("\\n", " "), flush=True)
"""


def start_writers(repo: Path, prefixes: list[str], count: int) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, portalloc_script(), prefix, str(count)],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=git_env(),
        )
        for prefix in prefixes
    ]


def answers_of(writers: list[subprocess.Popen[str]]) -> dict[tuple[str, int], tuple[int, int]]:
    """Every exit-0 answer of the writers; a key answered twice must have been answered the same."""
    answered: dict[tuple[str, int], tuple[int, int]] = {}
    for writer in writers:
        out, _ = writer.communicate(timeout=600)
        for line in out.splitlines():
            row = json.loads(line)
            key, got = (row["model"], row["app_num"]), (row["backend"], row["frontend"])
            assert answered.setdefault(key, got) == got, (key, got, answered[key])
    return answered


def assert_no_port_twice_and_every_key_back(
    repo: Path, answered: dict[tuple[str, int], tuple[int, int]], elsewhere: dict[tuple[str, int], tuple[int, int]]
) -> None:
    """No port went to two keys (``elsewhere``: answers in another clone), and every answered key is back."""
    owners: dict[int, tuple[str, int]] = {}
    for key, got in [*answered.items(), *elsewhere.items()]:
        for port in got:
            assert owners.setdefault(port, key) == key, f"port {port} went to {owners[port]} and {key}"
    assert portalloc(repo, "host", "recover").returncode == 0
    for key, got in answered.items():
        assert pair(repo, *key) == got, key  # in the ledger, or back with its pair


@pytest.mark.slow
def test_writers_racing_git_stash_and_stash_pop_hand_out_no_port_twice_and_lose_no_key(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    writers = start_writers(repo, ["w1", "w2", "w3"], 15)
    for _ in range(30):
        if all(writer.poll() is not None for writer in writers):
            break
        git(repo, "stash", "-q", check=False)
        git(repo, "stash", "pop", "-q", check=False)
        if git(repo, "stash", "list", check=False):
            # The pop was refused or conflicted: as a user would, give up on the stash. Its keys
            # are then in neither the work tree nor any stash, and must come back from their leases.
            git(repo, "checkout", "-q", "HEAD", "--", "portalloc.json", check=False)
            git(repo, "reset", "-q", check=False)
            git(repo, "stash", "drop", "-q", check=False)
    answered = answers_of(writers)
    assert len(answered) >= 10
    assert_no_port_twice_and_every_key_back(repo, answered, {})


@pytest.mark.slow
def test_writers_racing_pull_rebase_autostash_while_a_clone_pushes(tmp_path: Path) -> None:
    origin = committed_repo(tmp_path / "origin")
    git(origin, "checkout", "-q", "-b", "side")
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for clone in (mine, theirs):
        git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(clone))
        assert portalloc(clone, "git-setup").returncode == 0
    writers = start_writers(mine, ["w1", "w2"], 15)
    pushed: dict[tuple[str, int], tuple[int, int]] = {}
    for n in range(1, 21):
        if all(writer.poll() is not None for writer in writers):
            break
        pushed[("t", n)] = pair(theirs, "t", n)
        git(theirs, "commit", "-q", "-am", f"t/{n}")
        git(theirs, "pull", "-q", "--rebase", check=False)
        git(theirs, "push", "-q", "origin", "main", check=False)
        git(mine, "pull", "-q", "--rebase", "--autostash", check=False)
    answered = answers_of(writers)
    assert len(answered) >= 10
    assert_no_port_twice_and_every_key_back(mine, answered, pushed)


def test_a_ledger_moved_with_git_mv_is_still_the_repository_s_ledger(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "repo")
    first = pair(repo, "api", 1)
    git(repo, "commit", "-q", "-am", "api/1")
    (repo / "infra").mkdir()
    git(repo, "mv", "portalloc.json", "infra/portalloc.json")
    git(repo, "commit", "-q", "-m", "move the ledger")
    done = portalloc(repo, "get", "web", "1")
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "Warning: using infra/portalloc.json, this repository's ledger (moved there from portalloc.json); "
        "--ledger chooses another\n"
    )
    assert not (repo / "portalloc.json").exists()  # on main: a second ledger, handing out 5001/8001 again
    assert pair(repo, "api", 1) == first
    assert '"web"' in (repo / "infra" / "portalloc.json").read_text()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "web/1")
    (repo / "apps").mkdir()
    (repo / "apps" / "portalloc.json").write_text((repo / "infra" / "portalloc.json").read_text())
    git(repo, "add", "apps/portalloc.json")
    refused = portalloc(repo, "get", "db", "1")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "Error: there is no ledger at"
    ) and "apps/portalloc.json, infra/portalloc.json" in (refused.stderr)


def test_init_on_a_machine_that_leases_5001_offers_a_range_free_here(tmp_path: Path) -> None:
    first = committed_repo(tmp_path / "first")
    assert pair(first, "m", 1) == (5001, 8001)
    second = new_repo(tmp_path / "second")
    done = portalloc(second, "init")
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "Note: this machine already leases ports of 5001+/8001+ to other repositories' ledgers; "
        "'portalloc policy set --backend-start 6001 --frontend-start 9001' moves this one to a range free here\n"
    )
    assert portalloc(second, "policy", "set", "--backend-start", "6001", "--frontend-start", "9001").returncode == 0
    assert pair(second, "m", 1) == (6001, 9001)
    third = new_repo(tmp_path / "third")
    assert portalloc(third, "--no-leases", "init").stderr == ""  # leases off: nothing machine-dependent is said


def test_host_lists_the_first_leases_and_clashes_by_port_and_says_how_many_more(tmp_path: Path) -> None:
    from portalloc.machine.leases import open_store

    store = open_store()
    with store.transaction():
        ids = []
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            ids.append(store.ledger_id(f"path:{tmp_path / name / 'portalloc.json'}", None, None))
            store.saw_checkout(ids[-1], tmp_path / name / "portalloc.json", None)
        for n in range(1, 121):  # 120 keys in each ledger on the same 120 pairs: 240 leases, 240 shared ports
            for ledger_id in ids:
                store.lease(ledger_id, ("m", n), (20000 + n, 30000 + n))
    store.close()
    shown = portalloc(tmp_path, "host")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[3] == "240 live leases"
    assert lines[5].split()[:4] == ["m", "1", "20001", "30001"]
    assert lines[4 + 100 + 1] == "… and 140 more leases (--limit 0 lists them all)"
    assert lines[-1] == "… and 140 more clashes (--limit 0 lists them all)"
    assert lines[-2].startswith("clash: port 20100 is claimed by m/100 of ")
    assert len(portalloc(tmp_path, "host", "--limit", "0").stdout.splitlines()) == len(lines) - 2 + 140 * 2
    listed = json.loads(portalloc(tmp_path, "host", "--json").stdout)
    assert (len(listed["leases"]), listed["leases_total"], len(listed["clashes"]), listed["clashes_total"]) == (
        240,
        240,
        240,
        240,
    )
    cut = json.loads(portalloc(tmp_path, "host", "--json", "--limit", "3").stdout)
    assert [lease["backend"] for lease in cut["leases"]] == [20001, 20001, 20002]
    assert [clash["port"] for clash in cut["clashes"]] == [20001, 20002, 20003]
    assert (cut["leases_total"], cut["clashes_total"]) == (240, 240)
