"""``portalloc diff`` between real commits and branches, and the pure comparison under it."""

from __future__ import annotations

import json
from pathlib import Path

from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.core.review import compare
from portalloc.storage.codec import dump_ledger, parse_ledger
from tests.integrations import test_git
from tests.integrations.test_git import Run, commit

# The real-git fixtures of tests/integrations/test_git.py: a temp repository, git and the installed script in it.
env, repo, git, portalloc = test_git.env, test_git.repo, test_git.git, test_git.portalloc


def _ledger(*rows: tuple[str, int, int, int], policy: PortPolicy | None = None) -> Ledger:
    allocations = [Allocation(model=m, app_num=n, backend=b, frontend=f) for m, n, b, f in rows]
    return Ledger(policy=policy or PortPolicy()).with_allocations(allocations)


def test_compare_added_released_moved_policy_and_conflicts() -> None:
    before = _ledger(("a", 1, 5001, 8001), ("b", 1, 5003, 8003), ("c", 1, 5005, 8005))
    after = _ledger(
        ("a", 1, 5001, 8001),
        ("b", 1, 5009, 8009),  # moved
        ("d", 1, 5005, 8011),  # added, and shares 5005 with nobody now that c/1 is gone
        ("e", 1, 5009, 8013),  # added on b/1's new backend: a conflict
        policy=PortPolicy(step=4),
    )
    change = compare(before, after)
    assert [a.label() for a in change.added] == ["d/1", "e/1"]
    assert [a.label() for a in change.released] == ["c/1"]
    assert [(m.before.ports, m.after.ports) for m in change.moved] == [((5003, 8003), (5009, 8009))]
    assert [(c.setting, c.before, c.after) for c in change.policy] == [("step", 2, 4)]
    assert [c.describe() for c in change.new_conflicts] == ["port 5009 is used by b/1 (backend) and e/1 (backend)"]
    assert change.off_policy == []
    # The same ledger compared with itself changes nothing; an old conflict is not new.
    assert not compare(after, after).changed
    assert compare(after, after).new_conflicts == [] and len(compare(after, after).conflicts) == 1


def test_a_narrower_policy_strands_rows_nobody_touched() -> None:
    before = _ledger(("a", 1, 5001, 8001), ("a", 2, 7001, 10001))
    narrow = before.model_copy(update={"policy": PortPolicy(max_port=9000)})
    change = compare(before, narrow)
    assert [(a.label(), reason) for a, reason in change.off_policy] == [
        ("a/2", "frontend 10001 is outside the policy's frontend range 8001-9000")
    ]


def test_diff_between_commits_and_against_the_work_tree(repo: Path, git: Run, portalloc: Run) -> None:
    for key in ("model_a 1", "model_b 1"):
        portalloc("get", *key.split())
    commit(git, "base")
    portalloc("release", "model_a", "1")
    portalloc("get", "model_c", "1")
    clean = portalloc("--ledger", "portalloc.json", "diff")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == (
        "Ledger changes from HEAD to the working tree: 1 added, 1 released, 0 moved, "
        "0 policy settings changed, no conflicts.\n"
        "  + model_c/1  5001/8001\n"
        "  - model_a/1  5001/8001\n"
    )
    commit(git, "swap")
    between = portalloc("diff", "HEAD~1", "HEAD", "--json")
    report = json.loads(between.stdout)
    assert report["before"] == "HEAD~1" and report["after"] == "HEAD"
    assert report["added"] == [{"model": "model_c", "app_num": 1, "backend": 5001, "frontend": 8001}]
    assert [a["model"] for a in report["released"]] == ["model_a"]
    assert report["moved"] == report["policy"] == report["new_conflicts"] == []
    assert portalloc("diff", "HEAD").stdout.startswith("Ledger changes from HEAD to the working tree: 0 added")


def test_diff_of_a_branch_that_leaves_a_conflict_as_markdown(repo: Path, git: Run, portalloc: Run) -> None:
    portalloc("get", "model_a", "1")
    commit(git, "base")
    git("checkout", "-q", "-b", "feature")
    ledger = repo / "portalloc.json"
    current = parse_ledger(ledger.read_bytes(), ledger)
    # A hand edit (or a careless merge): a new app on model_a/1's ports, and one moved app.
    broken = current.with_allocations(
        [*current.allocations, Allocation(model="model_b", app_num=7, backend=5001, frontend=8003)]
    )
    ledger.write_bytes(dump_ledger(broken))
    commit(git, "feature")
    done = portalloc("diff", "main", "feature", "--format", "markdown")
    assert done.returncode == 1  # a new conflict: the CI job fails, and still posts the comment
    assert done.stdout == (
        "### portalloc: `portalloc.json`\n"
        "\n"
        "`main` → `feature`: 1 added, 0 released, 0 moved, 0 policy settings changed, 1 new conflict.\n"
        "\n"
        "| change | app | backend | frontend |\n"
        "|---|---|---:|---:|\n"
        "| added | `model_b/7` | 5001 | 8003 |\n"
        "\n"
        "**Conflicts this change leaves** (`portalloc repair` fixes them):\n"
        "\n"
        "- port 5001 is used by model_a/1 (backend) and model_b/7 (backend)\n"
    )
    as_json = json.loads(portalloc("diff", "main", "feature", "--json").stdout)
    assert as_json["new_conflicts"] == [
        {
            "port": 5001,
            "holders": [
                {"model": "model_a", "app_num": 1, "role": "backend"},
                {"model": "model_b", "app_num": 7, "role": "backend"},
            ],
        }
    ]


def test_diff_errors(repo: Path, git: Run, portalloc: Run) -> None:
    portalloc("get", "model_a", "1")
    commit(git, "base")
    for args, code in ((("diff", "no-such-rev"), 1), (("diff", "a", "b", "c"), 2)):
        done = portalloc(*args)
        assert done.returncode == code, args
        assert done.stderr.startswith("Error: ") and len(done.stderr.splitlines()) == 1
        assert "Traceback" not in done.stderr
    # A ledger that did not exist at the base revision diffs as empty: everything is added.
    git("checkout", "-q", "--orphan", "fresh")
    git("rm", "-q", "-f", "portalloc.json")
    git("commit", "-q", "--allow-empty", "-m", "nothing yet")
    assert "1 added" in portalloc("diff", "HEAD", "main").stdout
