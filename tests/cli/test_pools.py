"""Per-model pools from the CLI, ``check``'s pool warnings, and the merge driver with pools in real git repos."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunCli, portalloc_script
from tests.integrations import test_git
from tests.integrations.test_git import Run, commit


def test_pool_add_list_remove(run_cli: RunCli) -> None:
    run_cli("init")
    added = run_cli("pool", "add", "big", "--ports", "5101-5199", "--overflow", "fail")
    assert added.exit_code == 0, added.stderr
    assert added.stdout.splitlines() == [
        "MODEL       PAIRS   BACKENDS  FRONTENDS  OVERFLOW",
        "big    50-99 (50)  5101-5199  8101-8199  fail",
    ]
    run_cli("pool", "add", "small", "--pairs", "0-9")
    listed = json.loads(run_cli("pool", "list", "--json").stdout)
    assert listed == [
        {"model": "small", "first": 0, "last": 9, "pairs": 10, "backends": [5001, 5019], "frontends": [8001, 8019],
         "overflow": "shared"},
        {"model": "big", "first": 50, "last": 99, "pairs": 50, "backends": [5101, 5199], "frontends": [8101, 8199],
         "overflow": "fail"},
    ]  # fmt: skip
    assert "Pools:     small: pairs 0-9 (overflow shared); big: pairs 50-99 (overflow fail)" in run_cli("policy").stdout
    assert run_cli("pool", "remove", "small").exit_code == 0
    assert [p["model"] for p in json.loads(run_cli("pool", "list", "--json").stdout)] == ["big"]
    run_cli("pool", "remove", "big")
    assert run_cli("pool", "list").stdout == "No pools.\n"


def test_pooled_models_take_their_pool_and_a_full_fail_pool_is_an_error(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("init")
    run_cli("pool", "add", "big", "--pairs", "10-11", "--overflow", "fail")
    run_cli("pool", "add", "mid", "--pairs", "20-20")
    assert run_cli("get", "other", "1").stdout == "other/1: backend 5001, frontend 8001\n"
    assert run_cli("get", "big", "1").stdout == "big/1: backend 5021, frontend 8021\n"
    assert run_cli("get", "big", "2").stdout == "big/2: backend 5023, frontend 8023\n"
    assert run_cli("get", "mid", "1").stdout == "mid/1: backend 5041, frontend 8041\n"
    assert run_cli("get", "mid", "2").stdout == "mid/2: backend 5003, frontend 8003\n"  # overflow to the shared range
    before = ledger_path.read_bytes()
    full = run_cli("get", "big", "3")
    assert full.exit_code == 1
    assert full.stderr == (
        "Error: no free port pair left in the pool of big (pairs 10-11), and its overflow is 'fail'; "
        "release some of its apps or widen the pool\n"
    )
    assert ledger_path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("pool", "add", "big"), 2, "give the pool as --pairs K-L or as --ports LOW-HIGH"),
        (("pool", "add", "big", "--pairs", "0-1", "--ports", "5001-5003"), 2, "(one of them)"),
        (("pool", "add", "big", "--pairs", "9-2"), 2, "Invalid value for '--pairs'"),
        (("pool", "add", "big", "--ports", "12000-13000"), 2, "no pair of the policy has its backend in 12000-13000"),
        (("pool", "add", "big", "--pairs", "1490-1500"), 1, "pool of big ends at pair 1500; the policy has 1500"),
        (("pool", "add", "big", "--pairs", "0-3", "--overflow", "spill"), 2, "Invalid value for '--overflow'"),
        (("pool", "add", "big", "--pairs", "0-3"), 1, "a/1 (5001/8001): port 5001 is in the pool of big"),
        (("pool", "add", "other", "--pairs", "25-40"), 1, "pools of other and taken overlap"),
        (("pool", "add", "taken", "--pairs", "50-60"), 1, "taken already has a pool"),
        (("pool", "remove", "nobody"), 1, "nobody has no pool"),
        (("pool", "add", "../x", "--pairs", "50-60"), 2, "'.' or '..' path segment"),
    ],
)
def test_pool_refusals_write_nothing(
    run_cli: RunCli, ledger_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    run_cli("init")
    run_cli("get", "a", "1")
    run_cli("pool", "add", "taken", "--pairs", "30-39")
    before = ledger_path.read_bytes()
    done = run_cli(*args)
    assert (done.exit_code, done.stdout) == (code, "")
    assert done.stderr.startswith("Error: ") and message in done.stderr and len(done.stderr.splitlines()) == 1
    assert ledger_path.read_bytes() == before


def test_an_app_outside_its_models_pool_stays_and_check_warns(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("init")
    run_cli("get", "a", "1")
    assert run_cli("pool", "add", "a", "--pairs", "10-19").exit_code == 0
    assert run_cli("get", "a", "1").stdout == "a/1: backend 5001, frontend 8001\n"
    assert run_cli("get", "a", "2").stdout == "a/2: backend 5021, frontend 8021\n"
    check = run_cli("check")
    assert check.exit_code == 0
    assert check.stdout == f"OK: 2 allocations, no conflicts ({ledger_path})\n"
    assert (
        check.stderr
        == f"Warning: a/1 (5001/8001) lies outside the pool of a: pairs 10-19 (overflow shared) ({ledger_path})\n"
    )
    report = json.loads(run_cli("check", "--json").stdout)
    assert report == {
        "ok": True,
        "ledgers": [
            {
                "ledger": str(ledger_path),
                "ok": True,
                "valid": True,
                "allocations": 2,
                "conflicts": [],
                "live_problems": [],
            }
        ],
    }


def test_check_json_reports_conflicts_with_their_holders(run_cli: RunCli, ledger_path: Path) -> None:
    ledger_path.write_text(
        '{"version": 1, "allocations": [\n'
        '{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001},\n'
        '{"model": "b", "app_num": 1, "backend": 8001, "frontend": 9001}]}\n'
    )
    done = run_cli("check", "--json")
    assert done.exit_code == 1
    assert json.loads(done.stdout)["ledgers"][0]["conflicts"] == [
        {"port": 8001, "holders": [{"model": "a", "app_num": 1, "role": "frontend"},
                                   {"model": "b", "app_num": 1, "role": "backend"}]}
    ]  # fmt: skip
    missing = run_cli("check", "--json", str(ledger_path.with_name("nope.json")))
    assert missing.exit_code == 1  # a missing ledger is a failed check, as for any other reason


# --- the merge driver with pools, in real git repositories ---------------------------------


# The real-git fixtures of tests/integrations/test_git.py: a temp repository, its environment and git in it.
env, repo, git = test_git.env, test_git.repo, test_git.git


@pytest.fixture
def portalloc(repo: Path, env: dict[str, str], git: Run) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([portalloc_script(), *args], cwd=repo, env=env, capture_output=True, text=True)

    assert run("git-setup").returncode == 0
    return run


def rows(repo: Path) -> dict[str, tuple[int, int]]:
    ledger = json.loads((repo / "portalloc.json").read_text())
    return {f"{a['model']}/{a['app_num']}": (a["backend"], a["frontend"]) for a in ledger["allocations"]}


def ledger_policy(repo: Path) -> dict[str, object]:
    policy = json.loads((repo / "portalloc.json").read_text())["policy"]
    assert isinstance(policy, dict)
    return policy


def start(git: Run, portalloc: Run) -> None:
    """main: the driver set up and a ledger with a/1 (pair 0), committed; then the branch ``feature``."""
    assert portalloc("init").returncode == 0
    assert portalloc("get", "a", "1").returncode == 0
    commit(git, "base")
    git("checkout", "-q", "-b", "feature")


def test_a_pool_added_on_one_side_is_merged_in(repo: Path, git: Run, portalloc: Run) -> None:
    start(git, portalloc)
    assert portalloc("pool", "add", "big", "--pairs", "10-19").returncode == 0
    assert portalloc("get", "big", "1").returncode == 0
    commit(git, "feature: big gets a pool")
    git("checkout", "-q", "main")
    assert portalloc("get", "c", "1").returncode == 0
    commit(git, "main: c/1")
    git("merge", "-q", "--no-edit", "feature")
    assert rows(repo) == {"a/1": (5001, 8001), "big/1": (5021, 8021), "c/1": (5003, 8003)}
    assert ledger_policy(repo)["pools"] == [{"model": "big", "first": 10, "last": 19, "overflow": "shared"}]
    assert portalloc("check").returncode == 0
    assert portalloc("get", "d", "1").stdout == "d/1: backend 5005, frontend 8005\n"


def test_the_same_pool_added_on_both_sides_merges(repo: Path, git: Run, portalloc: Run) -> None:
    start(git, portalloc)
    portalloc("pool", "add", "big", "--pairs", "10-19")
    portalloc("get", "big", "1")
    commit(git, "feature: big gets a pool")
    git("checkout", "-q", "main")
    portalloc("pool", "add", "big", "--pairs", "10-19")
    portalloc("get", "big", "2")  # the same pair as big/1 on the other side
    commit(git, "main: the same pool")
    git("merge", "-q", "--no-edit", "feature")
    assert rows(repo) == {"a/1": (5001, 8001), "big/1": (5023, 8023), "big/2": (5021, 8021)}
    assert portalloc("check").returncode == 0


def test_two_different_pool_changes_are_refused_naming_both(repo: Path, git: Run, portalloc: Run) -> None:
    start(git, portalloc)
    portalloc("pool", "add", "big", "--pairs", "10-19")
    commit(git, "feature: big on 10-19")
    git("checkout", "-q", "main")
    portalloc("pool", "add", "big", "--pairs", "20-29", "--overflow", "fail")
    commit(git, "main: big on 20-29")
    ours = (repo / "portalloc.json").read_bytes()
    merge = git("merge", "-q", "--no-edit", "feature", check=False)
    assert merge.returncode != 0
    assert (
        "Error: both sides changed the policy, to different policies "
        "(ours (main): backend 5001+, frontend 8001+, step 2, max 65535, pools big: pairs 20-29 (overflow fail); "
        "theirs (feature): backend 5001+, frontend 8001+, step 2, max 65535, "
        "pools big: pairs 10-19 (overflow shared)); "
        "merge the policy change by hand"
    ) in merge.stderr
    assert "portalloc.json" in git("diff", "--name-only", "--diff-filter=U").stdout
    assert (repo / "portalloc.json").read_bytes() == ours


def test_a_pool_over_pairs_the_other_side_handed_out_is_refused(repo: Path, git: Run, portalloc: Run) -> None:
    start(git, portalloc)
    assert portalloc("pool", "add", "big", "--pairs", "1-4").returncode == 0
    commit(git, "feature: big on pairs 1-4")
    git("checkout", "-q", "main")
    assert portalloc("get", "c", "1").stdout == "c/1: backend 5003, frontend 8003\n"  # pair 1
    commit(git, "main: c/1")
    merge = git("merge", "-q", "--no-edit", "feature", check=False)
    assert merge.returncode != 0
    assert "the merged allocations do not fit the merged policy" in merge.stderr
    assert "c/1 (5003/8003): port 5003 is in the pool of big; merge by hand" in merge.stderr


def test_ports_reserved_on_one_side_are_kept_and_the_other_sides_apps_stay(
    repo: Path, git: Run, portalloc: Run
) -> None:
    start(git, portalloc)
    assert portalloc("reserve", "5003").returncode == 0
    commit(git, "feature: reserve 5003")
    git("checkout", "-q", "main")
    portalloc("get", "c", "1")  # 5003: reserved on the other side meanwhile
    commit(git, "main: c/1")
    git("merge", "-q", "--no-edit", "feature")
    assert rows(repo)["c/1"] == (5003, 8003)
    assert ledger_policy(repo)["reserved"] == [[5003, 5003]]
    check = portalloc("check")
    assert check.returncode == 0 and "Warning: c/1 holds reserved port 5003" in check.stderr
