"""``portalloc history`` against a real git repository whose commits carry set dates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from portalloc.core.models import Allocation, Ledger
from portalloc.integrations.history import Version, ledger_versions, summarize
from tests.conftest import portalloc_script
from tests.integrations import test_git
from tests.integrations.test_git import Run

# The real-git fixtures of tests/integrations/test_git.py: a temp repository, git and the installed script in it.
env, repo, git, portalloc = test_git.env, test_git.repo, test_git.git, test_git.portalloc


def commit_dated(repo: Path, env: dict[str, str], day: str, message: str) -> subprocess.CompletedProcess[str]:
    """Commit everything in ``repo`` with author and committer date ``day`` at noon UTC."""
    stamp = f"{day}T12:00:00+00:00"
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True, capture_output=True)
    return subprocess.run(
        ["git", "commit", "-q", "-m", message],
        cwd=repo,
        env={**env, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def dated(repo: Path, env: dict[str, str], git: Run) -> Run:
    """``dated(day, message)``: ``commit_dated`` in the test's repository."""

    def run(day: str, message: str) -> subprocess.CompletedProcess[str]:
        return commit_dated(repo, env, day, message)

    return run


@pytest.fixture(scope="module")
def three_weeks_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Week 1: one app; week 2: three more; week 3: one released, three of model_c, and a README commit.

    Built once for the module (about twenty git and portalloc processes); each test gets a
    copy of its own (``three_weeks``), so a test that commits more changes only its copy.
    """
    base = tmp_path_factory.mktemp("three-weeks")
    (base / "home").mkdir()
    env = test_git.git_test_env(base / "home")
    repo = base / "repo"
    repo.mkdir()

    def portalloc(*args: str) -> None:
        done = subprocess.run([portalloc_script(), *args], cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
    portalloc("get", "model_a", "1")
    commit_dated(repo, env, "2026-01-05", "first app")
    batch = base / "batch.txt"  # outside the repository
    batch.write_text("model_a 2\nmodel_b 1\nmodel_b 2\n")
    portalloc("get-many", str(batch))
    (repo / "README").write_text("unrelated\n")
    commit_dated(repo, env, "2026-01-12", "three more")
    (repo / "README").write_text("unrelated, changed\n")
    commit_dated(repo, env, "2026-01-14", "docs only")  # does not touch the ledger: not a version
    portalloc("release", "model_a", "2")
    batch.write_text("model_c 1\nmodel_c 2\nmodel_c 3\n")
    portalloc("get-many", str(batch))
    commit_dated(repo, env, "2026-01-19", "model_c arrives")
    return repo


@pytest.fixture
def three_weeks(three_weeks_built: Path, git: Run, repo: Path) -> Path:
    """The test's own copy of ``three_weeks_built`` at ``repo`` (over ``git``'s fresh init): its ledger."""
    shutil.copytree(three_weeks_built, repo, symlinks=True, dirs_exist_ok=True)
    return repo / "portalloc.json"


def test_versions_are_the_commits_that_touch_the_ledger(three_weeks: Path) -> None:
    versions = ledger_versions(three_weeks)
    assert [(v.when.date().isoformat(), v.subject) for v in versions] == [
        ("2026-01-05", "first app"),
        ("2026-01-12", "three more"),
        ("2026-01-19", "model_c arrives"),
    ]
    assert [len(v.ledger.allocations) for v in versions if v.ledger] == [1, 4, 6]


def test_history_text(three_weeks: Path, portalloc: Run) -> None:
    done = portalloc("--ledger", "portalloc.json", "history")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "3 versions of portalloc.json from 2026-01-05 to 2026-01-19 (2.0 weeks):\n"
        "DATE        APPS  ADDED  RELEASED  COMMIT\n"
        "2026-01-05     1     +1        -0  first app\n"
        "2026-01-12     4     +3        -0  three more\n"
        "2026-01-19     6     +3        -1  model_c arrives\n"
        "\n"
        "MODEL    APPS  ADDED  RELEASED\n"
        "model_a     1     +2        -1\n"
        "model_b     2     +2        -0\n"
        "model_c     3     +3        -0\n"
        "\n"
        "Net growth: +5 allocations. At 2.5 new apps a week, the range (1,488 free pairs) "
        "is full in about 595 weeks.\n"
    )


def test_history_json_since_and_model(three_weeks: Path, portalloc: Run) -> None:
    done = portalloc("history", "--json", "--since", "2026-01-10", "--model", "model_b")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(v["date"][:10], v["allocations"], v["added"]) for v in report["versions"]] == [
        ("2026-01-12", 2, 2),
        ("2026-01-19", 2, 0),
    ]
    assert report["models"] == [{"model": "model_b", "allocations": 2, "added": 2, "released": 0}]
    # From 2026-01-10 00:00 (nothing of model_b yet) to 2026-01-19 12:00: +2 in 9.5 days.
    assert report["net_growth"] == 2
    assert report["per_week"] == pytest.approx(2 / (9.5 / 7))
    assert report["weeks_left"] == pytest.approx(1488 / (2 / (9.5 / 7)))
    assert len(report["versions"][0]["commit"]) == 40


def test_bad_since_and_outside_a_repository(tmp_path: Path, portalloc: Run, env: dict[str, str]) -> None:
    bad = portalloc("history", "--since", "last tuesday")
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: ") and len(bad.stderr.splitlines()) == 1
    outside = tmp_path / "outside"
    outside.mkdir()
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(outside / "portalloc.json"), "history"],
        cwd=outside, env={**env, "GIT_CEILING_DIRECTORIES": str(tmp_path)}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "not inside a git work tree" in done.stderr


def test_a_corrupt_version_is_skipped_with_a_warning(three_weeks: Path, dated: Run, portalloc: Run) -> None:
    three_weeks.write_text("<<<<<<< HEAD\n")
    dated("2026-01-20", "botched merge")
    done = portalloc("history", "--json")
    assert done.returncode == 0
    assert len(json.loads(done.stdout)["versions"]) == 3
    assert done.stderr.startswith("Warning: skipped ")
    assert "botched merge" in done.stderr


def test_png(three_weeks: Path, portalloc: Run, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="--png needs the plot extra")
    png = tmp_path / "history.png"
    done = portalloc("history", "--png", str(png))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"Wrote {png}\n"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    quiet = portalloc("history", "--json", "--png", str(png))
    assert json.loads(quiet.stdout)["net_growth"] == 5 and quiet.stderr == f"Wrote {png}\n"


def test_png_shows_the_capacity_line_and_whole_number_ticks(three_weeks: Path) -> None:
    pytest.importorskip("matplotlib", reason="--png needs the plot extra")
    from portalloc.integrations.plot import history_figure

    figure = history_figure(summarize(ledger_versions(three_weeks)))
    figure.canvas.draw()  # ticks are chosen when drawn
    (axes,) = figure.axes
    flat = [line for line in axes.get_lines() if len(set(line.get_ydata())) == 1]
    assert [line.get_ydata()[0] for line in flat] == [1494]  # 6 allocations + 1,488 free pairs
    assert any(text.get_text() == "capacity (1,494 pairs)" for text in axes.get_legend().get_texts())
    assert axes.get_title() == "portalloc ledger history: +2.5 apps a week"
    # A small range is where matplotlib would put ticks at 0.5 apps.
    small = history_figure(summarize([_version(1, "a"), _version(2, "a", "b")])._replace(free_pairs=1))
    small.canvas.draw()
    (axes,) = small.axes
    ticks = [tick for tick in axes.get_yticks() if axes.get_ylim()[0] <= tick <= axes.get_ylim()[1]]
    assert ticks == [0, 1, 2, 3]
    assert axes.get_title() == "portalloc ledger history: no growth rate yet"


def _version(day: int, *keys: str) -> Version:
    ledger = Ledger().with_allocations(
        Allocation(model=key, app_num=1, backend=5001 + 2 * n, frontend=8001 + 2 * n) for n, key in enumerate(keys)
    )
    return Version(f"{day:040d}", datetime(2026, 2, day, tzinfo=timezone.utc), f"day {day}", ledger)


def test_summarize_forecast_edges() -> None:
    assert summarize([]).per_week is None
    one = summarize([_version(1, "a")])
    assert (one.per_week, one.weeks_left, one.no_forecast) == (
        None,
        None,
        "1 version in the window; a growth rate needs 3",
    )
    two = summarize([_version(1, "a"), _version(15, "a", "b")])
    assert (two.per_week, two.no_forecast) == (None, "2 versions in the window; a growth rate needs 3")
    short = summarize([_version(1, "a"), _version(2, "a", "b"), _version(3, "a", "b", "c")])
    assert (short.per_week, short.no_forecast) == (
        None,
        "the window is 2.0 days long; a growth rate needs at least 7 days",
    )
    shrinking = summarize([_version(1, "a", "b", "c"), _version(4, "a", "b"), _version(8, "a")])
    assert (shrinking.per_week, shrinking.no_forecast) == (pytest.approx(-2.0), None)
    assert shrinking.weeks_left is None


def test_minutes_of_history_tell_no_rate(repo: Path, env: dict[str, str], git: Run, portalloc: Run) -> None:
    """The issue's case: three commits minutes apart once "forecast" 156800.0 new apps a week."""
    for minute, key in ((0, "a"), (3, "b"), (6, "c")):
        portalloc("get", key, "1")
        stamp = f"2026-03-02T12:{minute:02d}:00+00:00"
        git("add", "-A")
        subprocess.run(
            ["git", "commit", "-q", "-m", key],
            cwd=repo, env={**env, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}, check=True,
        )  # fmt: skip
    done = portalloc("history")
    assert done.stdout.splitlines()[-1] == (
        "Net growth: +2 allocations. No forecast: the window is 6 minutes long; a growth rate needs at least 7 days."
    )
    report = json.loads(portalloc("history", "--json").stdout)
    assert (report["per_week"], report["weeks_left"]) == (None, None)
    assert report["no_forecast"] == "the window is 6 minutes long; a growth rate needs at least 7 days"


def test_shrinking_allocations_say_so(three_weeks: Path, dated: Run, portalloc: Run) -> None:
    for key in ("model_c 1", "model_c 2", "model_c 3", "model_b 1", "model_b 2"):
        portalloc("release", *key.split())
    dated("2026-02-02", "released most")
    done = portalloc("history", "--since", "2026-01-15")
    # From 4 (the state at the 15th) to 1 in 18.5 days.
    assert done.stdout.splitlines()[-1] == (
        "Net growth: -3 allocations. Allocations are not growing (-1.1 a week); the range does not run out."
    )


def test_png_refuses_a_fifo_and_a_missing_directory(three_weeks: Path, portalloc: Run, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="--png needs the plot extra")
    fifo = tmp_path / "history.png"
    os.mkfifo(fifo)  # savefig used to open it for writing: a reader-less FIFO would hang
    for target, message in ((fifo, "is not a regular file (a FIFO)"), (tmp_path / "no" / "h.png", "cannot write")):
        done = portalloc("history", "--png", str(target))
        assert done.returncode == 1, done
        assert done.stderr.startswith("Error: ") and message in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
    assert not (tmp_path / "no").exists()


def test_png_refuses_a_symbolic_link(three_weeks: Path, portalloc: Run, tmp_path: Path) -> None:
    """``--png`` through a link once replaced the link's target with a PNG; a dangling link created its target."""
    pytest.importorskip("matplotlib", reason="--png needs the plot extra")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me\n")
    link, dangling = tmp_path / "history.png", tmp_path / "dangling.png"
    link.symlink_to(victim)
    dangling.symlink_to(tmp_path / "created.png")
    for target in (link, dangling):
        done = portalloc("history", "--png", str(target))
        assert done.returncode == 1, done
        assert done.stderr.startswith("Error: ") and "is a symbolic link" in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
    assert victim.read_bytes() == b"keep me\n"
    assert not (tmp_path / "created.png").exists()
    done = portalloc("history", "--png", str(link), "--follow-symlinks")
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and victim.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
