"""Default ledger and pre-configuration discovery."""

from __future__ import annotations

from pathlib import Path

from portalloc.paths import find_config, find_ledger


def test_outside_a_repository_the_ledger_is_in_the_current_directory(tmp_path: Path) -> None:
    assert find_ledger(tmp_path) == tmp_path / "portalloc.json"


def test_inside_a_repository_the_ledger_is_at_its_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)
    assert find_ledger(deep) == tmp_path / "portalloc.json"


def test_the_nearest_existing_ledger_wins(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "portalloc.json").write_text("{}")
    assert find_ledger(tmp_path / "sub") == tmp_path / "sub" / "portalloc.json"


def test_the_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "portalloc.json").write_text("{}")  # outside the repository below
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert find_ledger(repo) == repo / "portalloc.json"


def test_config_beside_the_ledger_then_in_misc(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    assert find_config(ledger) is None
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "port_config.json").write_text("[]")
    assert find_config(ledger) == tmp_path / "misc" / "port_config.json"
    (tmp_path / "port_config.json").write_text("[]")
    assert find_config(ledger) == tmp_path / "port_config.json"
