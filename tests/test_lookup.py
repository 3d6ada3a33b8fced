"""The read-only fast path: a hit only when the file is unambiguous, else None (the full path decides)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portalloc.lookup import find_pair
from portalloc.service import PortAllocationService


def test_finds_an_existing_pair(ledger_path: Path) -> None:
    PortAllocationService(ledger_path).allocate_many([("a", 1), ("b", 2)])
    hit = find_pair(ledger_path, "b", 2)
    assert hit is not None and hit.ports == (5003, 8003) and hit.probe
    assert find_pair(ledger_path, "b", 1) is None
    assert find_pair(ledger_path, "B", 2) is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"version": 2, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}]}',
        '{"version": 1, "allocations": {}}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": true, "backend": 5001, "frontend": 8001}]}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": "5001", "frontend": 8001}]}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 80, "frontend": 8001}]}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 8001, "frontend": 8001}]}',
    ],
)
def test_anything_irregular_defers_to_the_full_path(ledger_path: Path, content: str) -> None:
    ledger_path.write_text(content)
    assert find_pair(ledger_path, "a", 1) is None


def test_missing_file_or_directory(tmp_path: Path) -> None:
    assert find_pair(tmp_path / "nope.json", "a", 1) is None
    assert find_pair(tmp_path, "a", 1) is None


def test_agrees_with_the_service_on_the_first_of_duplicate_rows(ledger_path: Path) -> None:
    rows = [
        {"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001},
        {"model": "a", "app_num": 1, "backend": 5003, "frontend": 8003},
    ]
    ledger_path.write_text(json.dumps({"version": 1, "allocations": rows}))
    found = PortAllocationService(ledger_path).get_ports("a", 1)
    assert found is not None
    hit = find_pair(ledger_path, "a", 1)
    assert hit is not None and hit.ports == found.ports == (5001, 8001)


def test_reports_a_policy_that_turns_probing_off(ledger_path: Path) -> None:
    row = {"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}
    ledger_path.write_text(json.dumps({"version": 1, "policy": {"probe": False}, "allocations": [row]}))
    hit = find_pair(ledger_path, "a", 1)
    assert hit is not None and not hit.probe
