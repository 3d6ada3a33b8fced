"""Capacity counted on this machine leaves out the ports other ledgers lease here (issue 20), and a count
never fails because of the host lease store."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from portalloc import PortAllocationService
from portalloc.core.models import PortPolicy
from portalloc.errors import NoFreePair
from portalloc.machine.leases import STORE_NAME
from portalloc.reports import policy_report

#: 100 pairs (29001/29101 … 29100/29200), below the usual ephemeral ranges.
POLICY = PortPolicy(backend_start=29001, frontend_start=29101, max_port=29200, step=1)


def test_pairs_another_ledger_leases_here_are_not_counted_as_free_and_are_not_handed_out(tmp_path: Path) -> None:
    other = PortAllocationService(tmp_path / "other.json", policy=POLICY, probe=False)
    other.allocate_many([("x", 1), ("x", 2)])  # leases 29001/29101 and 29002/29102 here
    mine = PortAllocationService(tmp_path / "mine.json", policy=POLICY, probe=False)
    mine.allocate_many([("m", 1)])
    stats = mine.stats()
    assert (stats.capacity, stats.free_pairs) == (100, 99)
    assert (stats.usable_here, stats.free_here) == (98, 97)  # on main: 100 and 99, two of them leased elsewhere
    assert policy_report(POLICY, mine.unusable_here()).usable_here == 98
    assert len(mine.allocate_many([("m", n) for n in range(2, 99)])) == 97  # every free pair counted is handed out
    with pytest.raises(NoFreePair):
        mine.allocate_many([("m", 99)])
    assert mine.stats().free_here == 0


def test_with_leases_off_the_ledger_alone_counts(tmp_path: Path) -> None:
    PortAllocationService(tmp_path / "other.json", policy=POLICY, probe=False).allocate_many([("x", 1)])
    alone = PortAllocationService(tmp_path / "mine.json", policy=POLICY, probe=False, leases=False)
    assert alone.stats().free_here == 100


def test_a_store_that_cannot_be_used_still_counts_and_says_leases_are_not_excluded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    PortAllocationService(tmp_path / "mine.json", policy=POLICY, probe=False).allocate_many([("m", 1)])
    store = Path(os.environ["PORTALLOC_STATE_DIR"]) / STORE_NAME
    store.chmod(0o660)
    with caplog.at_level(logging.WARNING, logger="portalloc"):
        stats = PortAllocationService(tmp_path / "mine.json", probe=False).stats()
    assert (stats.usable_here, stats.free_here) == (100, 99)
    assert [r.getMessage() for r in caplog.records] == [
        "the pairs counted as usable on this machine include ports other ledgers may lease: "
        f"the host lease store {store} is writable by others (mode 660); chmod go-w it, or set PORTALLOC_STATE_DIR "
        "to a directory of your own, or turn host leases off (PORTALLOC_LEASES=0)"
    ]


def test_a_machine_with_no_store_yet_counts_without_making_one(tmp_path: Path) -> None:
    PortAllocationService(tmp_path / "mine.json", policy=POLICY, leases=False, probe=False).allocate_many([("m", 1)])
    assert PortAllocationService(tmp_path / "mine.json", probe=False).stats().free_here == 99
    assert not (Path(os.environ["PORTALLOC_STATE_DIR"]) / STORE_NAME).exists()
