"""The read-only fast path: a hit only when the file is unambiguous, else None (the full path decides)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from portalloc.errors import LedgerCorrupt
from portalloc.service.facade import PortAllocationService
from portalloc.storage.codec import parse_ledger
from portalloc.storage.lookup import find_pair


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
        '{"version": 3, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}]}',
        '{"version": 1, "policy": {"worktrees": "separate"}, "allocations": []}',
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


@pytest.mark.parametrize(
    "content",
    [
        # The reproductions: get answered from these while check called the file invalid.
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "backend": 5003, '
        '"frontend": 8001}]}',
        '{"version": 1, "allocations": [], "allocations": [{"model": "a", "app_num": 1, "backend": 5001, '
        '"frontend": 8001}]}',
        '{"version": true, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}]}',
        # The matched row is fine; another row or the policy is not, so the file is not a ledger.
        '{"version": 1, "policy": {"step": 0}, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, '
        '"frontend": 8001}]}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}, '
        '{"model": "b\\udcff", "app_num": 1, "backend": 5003, "frontend": 8003}]}',
        '{"version": 1, "extra": 0, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}]}',
    ],
)
def test_a_file_the_full_parser_refuses_gets_no_answer(ledger_path: Path, content: str) -> None:
    ledger_path.write_text(content)
    with pytest.raises(LedgerCorrupt):
        parse_ledger(ledger_path.read_bytes(), ledger_path)
    assert find_pair(ledger_path, "a", 1) is None


def test_a_fifo_is_not_read(ledger_path: Path) -> None:
    os.mkfifo(ledger_path)
    assert find_pair(ledger_path, "a", 1) is None  # returns at once: opened without blocking, then refused


def test_an_nfd_row_is_found_by_its_nfc_name(ledger_path: Path) -> None:
    row = {"model": "cafe\u0301", "app_num": 1, "backend": 5001, "frontend": 8001}
    ledger_path.write_text(json.dumps({"version": 1, "allocations": [row]}))
    hit = find_pair(ledger_path, "caf\u00e9", 1)
    found = PortAllocationService(ledger_path).get_ports("cafe\u0301", 1)
    assert hit is not None and found is not None and hit.ports == found.ports == (5001, 8001)
