"""cleanup: the service call, the command, and the rule that keeps it from releasing live apps."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from portalloc import PortAllocationService
from portalloc.core.keys import app_dir
from portalloc.errors import AppDirUnavailable, AppsDirLooksWrong, AppsDirMissing, InvalidKey
from tests.conftest import RunCli, portalloc_script, subprocess_env
from tests.reliability.cleanup_race import run_cleanup_race


def make_apps(root: Path, *dirs: str) -> Path:
    for d in dirs:
        (root / d).mkdir(parents=True)
    return root


def test_releases_allocations_whose_app_dir_is_gone(ledger_path: Path, tmp_path: Path) -> None:
    apps = make_apps(tmp_path / "apps", "model_a/app1", "openai%2Fgpt-4o/app2")
    service = PortAllocationService(ledger_path)
    service.allocate_many([("model_a", 1), ("model_a", 2), ("openai/gpt-4o", 2), ("model_b", 1)])
    dry = service.cleanup_orphaned_allocations(apps, dry_run=True)
    assert [a.label() for a in dry] == ["model_a/2", "model_b/1"]
    assert len(service.get_all_allocations()) == 4
    only_b = service.cleanup_orphaned_allocations(apps, model_name="model_b")
    assert [a.label() for a in only_b] == ["model_b/1"]
    rest = service.cleanup_orphaned_allocations(apps)
    assert [a.label() for a in rest] == ["model_a/2"]
    assert [a.label() for a in service.get_all_allocations()] == ["model_a/1", "openai/gpt-4o/2"]


def test_names_that_once_shared_a_directory_are_judged_apart(ledger_path: Path, tmp_path: Path) -> None:
    # a/b, a_b, a:b and "a b" all used to be apps/a_b: one live app kept three dead ones.
    apps = make_apps(tmp_path / "apps", "a_b/app1")
    service = PortAllocationService(ledger_path)
    service.allocate_many([("a/b", 1), ("a_b", 1), ("a:b", 1), ("a b", 1)])
    released = service.cleanup_orphaned_allocations(apps)
    assert sorted(a.model for a in released) == ["a b", "a/b", "a:b"]
    assert [a.model for a in service.get_all_allocations()] == ["a_b"]


def test_a_model_is_one_directory_level(ledger_path: Path, tmp_path: Path) -> None:
    # "team/app" lives in apps/team%2Fapp, never in apps/team/app: a "/" cannot descend or climb.
    apps = make_apps(tmp_path / "apps", "team/app/app1", "team%2Fapp/app2")
    service = PortAllocationService(ledger_path)
    service.allocate_many([("team/app", 1), ("team/app", 2)])
    released = service.cleanup_orphaned_allocations(apps)
    assert [a.label() for a in released] == ["team/app/1"]
    with pytest.raises(InvalidKey, match="path segment"):
        service.get_or_allocate_ports("../outside", 1)


def test_an_nfd_model_name_finds_its_nfc_directory(ledger_path: Path, tmp_path: Path) -> None:
    apps = make_apps(tmp_path / "apps", "caf\u00e9/app1")
    service = PortAllocationService(ledger_path)
    service.allocate_many([("cafe\u0301", 1), ("x", 1)])
    assert [a.label() for a in service.cleanup_orphaned_allocations(apps, "cafe\u0301")] == []
    assert [a.label() for a in service.cleanup_orphaned_allocations(apps)] == ["x/1"]


def test_missing_apps_dir_releases_nothing(ledger_path: Path, tmp_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    service.get_or_allocate_ports("m", 1)
    for dry_run in (True, False):
        with pytest.raises(AppsDirMissing, match=r"apps directory .*typo does not exist"):
            service.cleanup_orphaned_allocations(tmp_path / "typo", dry_run=dry_run)
    assert len(service.get_all_allocations()) == 1


@pytest.mark.parametrize("model", [None, "m"])
@pytest.mark.parametrize("dry_run", [True, False])
def test_an_apps_dir_with_no_app_is_refused_with_or_without_model_and_dry_run(
    ledger_path: Path, tmp_path: Path, model: str | None, dry_run: bool
) -> None:
    # The wrong level: apps/ holds m/app1 and m/app2, but the user named apps/m.
    apps = make_apps(tmp_path / "apps", "m/app1", "m/app2", "n/app1")
    service = PortAllocationService(ledger_path)
    service.allocate_many([("m", 1), ("m", 2), ("n", 1)])
    with pytest.raises(AppsDirLooksWrong, match=r"no app in the ledger has a directory under .* \(all 3 are missing"):
        service.cleanup_orphaned_allocations(apps / "m", model, dry_run=dry_run)
    assert len(service.get_all_allocations()) == 3
    released = service.cleanup_orphaned_allocations(apps / "m", model, dry_run=dry_run, allow_all=True)
    assert len(released) == (3 if model is None else 2)


def test_a_whole_model_gone_is_released_when_other_apps_remain(ledger_path: Path, tmp_path: Path) -> None:
    apps = make_apps(tmp_path / "apps", "n/app1")
    service = PortAllocationService(ledger_path)
    service.allocate_many([("m", 1), ("m", 2), ("n", 1)])
    assert len(service.cleanup_orphaned_allocations(apps, "m")) == 2


def test_a_directory_that_cannot_be_looked_at_is_not_gone(ledger_path: Path, tmp_path: Path) -> None:
    apps = make_apps(tmp_path / "apps", "keep/app1")
    service = PortAllocationService(ledger_path)
    long_name = "\u4e2d" * 100  # a valid model whose directory name is 300 bytes: more than any file system takes
    service.allocate_many([("keep", 1), (long_name, 1), ("gone", 1)])
    assert [a.label() for a in service.cleanup_orphaned_allocations(apps)] == ["gone/1"]
    with pytest.raises(AppDirUnavailable, match="File name too long"):
        service.allocate_app_dir(apps, long_name, 2)


def test_allocate_app_dir_makes_the_directory_then_the_pair(ledger_path: Path, tmp_path: Path) -> None:
    apps = make_apps(tmp_path, "apps") / "apps"
    service = PortAllocationService(ledger_path)
    pair, directory = service.allocate_app_dir(apps, "openai/gpt-4o", 3)
    assert directory == apps / "openai%2Fgpt-4o" / "app3" == app_dir(apps, "openai/gpt-4o", 3)
    assert directory.is_dir() and pair.ports == (5001, 8001)
    assert service.allocate_app_dir(apps, "openai/gpt-4o", 3) == (pair, directory)
    with pytest.raises(AppsDirMissing):
        service.allocate_app_dir(tmp_path / "typo", "m", 1)
    (apps / "m").write_text("")  # a file where the model's directory would be
    with pytest.raises(AppDirUnavailable, match=r"cannot create the app directory .*: Not a directory"):
        service.allocate_app_dir(apps, "m", 1)
    assert not (tmp_path / "typo").exists() and len(service.get_all_allocations()) == 1


def test_scaffolders_racing_cleanup_lose_no_live_app(tmp_path: Path) -> None:
    result = run_cleanup_race(tmp_path, scaffolders=3, apps_each=15, order="dir-first")
    assert result.errors == 0
    assert result.apps == 45
    assert result.cleanup_runs > 0
    assert result.released_live == result.reissued == result.duplicates == 0


# --- the command ------------------------------------------------------------------------------


@pytest.mark.usefixtures("new_ledger")
def test_command_text_and_json(run_cli: RunCli, tmp_path: Path, ledger_path: Path) -> None:
    apps = make_apps(tmp_path / "apps", "model_a/app1")
    run_cli("get", "model_a", "1")
    run_cli("get", "model_a", "2")
    dry = run_cli("cleanup", "--apps-dir", str(apps), "--dry-run")
    assert dry.stdout == "would release model_a/2 (5003/8003)\nWould release 1 allocation.\n"
    dry_json = run_cli("cleanup", "--apps-dir", str(apps), "--dry-run", "--json")
    assert json.loads(dry_json.stdout) == {
        "ledger": str(ledger_path),
        "dry_run": True,
        "released": [{"model": "model_a", "app_num": 2, "backend": 5003, "frontend": 8003}],
    }
    real = run_cli("cleanup", "--apps-dir", str(apps), "--json")
    assert json.loads(real.stdout)["released"][0]["app_num"] == 2 and real.stderr == ""
    assert json.loads(run_cli("list", "--json").stdout) == [
        {"model": "model_a", "app_num": 1, "backend": 5001, "frontend": 8001, "worktree": None}
    ]


@pytest.mark.parametrize("extra", [(), ("--dry-run",), ("--model", "m"), ("--model", "m", "--dry-run", "--json")])
def test_command_refusal_is_one_line_and_the_same_for_dry_run(
    tmp_path: Path, ledger_path: Path, extra: tuple[str, ...]
) -> None:
    apps = make_apps(tmp_path / "apps", "m/app1", "m/app2")
    PortAllocationService(ledger_path).allocate_many([("m", 1), ("m", 2)])
    before = ledger_path.read_bytes()
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(ledger_path), "cleanup", "--apps-dir", str(apps / "m"), *extra],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("Error: no app in the ledger has a directory under") and done.stderr.count("\n") == 1
    assert ledger_path.read_bytes() == before
    assert sorted(os.listdir(apps / "m")) == ["app1", "app2"]  # nothing created under the wrong level either


def test_an_app_whose_directory_name_is_nfd_is_alive(ledger_path: Path, tmp_path: Path) -> None:
    """An archive made on macOS spells ``café`` as ``cafe`` + U+0301: the same name, not a missing app."""
    apps = make_apps(tmp_path / "apps", "cafe\u0301/app1", "model_a/app1")
    service = PortAllocationService(ledger_path)
    service.allocate_many([("café", 1), ("café", 2), ("model_a", 1)])
    assert [a.label() for a in service.cleanup_orphaned_allocations(apps, dry_run=True)] == ["café/2"]
    assert [a.label() for a in service.cleanup_orphaned_allocations(apps)] == ["café/2"]
    assert [a.label() for a in service.get_all_allocations()] == ["café/1", "model_a/1"]
