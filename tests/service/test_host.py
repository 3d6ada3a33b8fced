"""One ledger's side of the host leases (``portalloc.service.host``): a long-lived service leases only what
is new since its last write, and never takes a row for leased that it did not lease itself.

Real files, a real store, and real processes writing between two writes of the service.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from portalloc.machine.leases import STORE_NAME
from portalloc.service.facade import PortAllocationService
from tests.conftest import subprocess_env


def live_pairs() -> dict[tuple[str, int], tuple[int, int]]:
    """Every live lease of every ledger in the test's store, by key."""
    with sqlite3.connect(Path(os.environ["PORTALLOC_STATE_DIR"]) / STORE_NAME) as db:
        rows = db.execute("SELECT model, app_num, backend, frontend FROM leases WHERE live").fetchall()
    return {(model, app_num): (backend, frontend) for model, app_num, backend, frontend in rows}


def ledger_pairs(service: PortAllocationService) -> dict[tuple[str, int], tuple[int, int]]:
    return {a.key: a.ports for a in service.ledger().allocations}


WRITER = """
import sys
from pathlib import Path
from portalloc.service.facade import PortAllocationService
api = PortAllocationService(Path(sys.argv[1]), probe=False, leases=False)  # rows that arrive unleased, as by git
api.allocate_many([("x", 1), ("zz", 1)])
api.release_ports("m", 2)
"""


def test_rows_another_process_wrote_between_two_writes_are_leased_by_the_next(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    api = PortAllocationService(ledger, probe=False)
    api.allocate_many([("m", 1), ("m", 2), ("m", 3)])
    subprocess.run([sys.executable, "-c", WRITER, str(ledger)], check=True, env=subprocess_env())
    api.get_or_allocate_ports("n", 1)
    rows = ledger_pairs(PortAllocationService(ledger, probe=False, leases=False))
    assert set(rows) == {("m", 1), ("m", 3), ("n", 1), ("x", 1), ("zz", 1)}
    # Every row is leased on its own pair, rows at both ends of the file included; m/2 was released
    # without the store (leases off), so its lease stays: a leaked lease, never a port handed out twice.
    assert live_pairs() == {**rows, ("m", 2): (5003, 8003)}


def test_a_released_row_put_back_on_its_old_pair_is_leased_again(tmp_path: Path) -> None:
    """The row git puts back equals the one this service leased, but its lease was ended by the release:
    only the very rows a service leased count as leased, never rows that merely look the same."""
    ledger = tmp_path / "portalloc.json"
    api = PortAllocationService(ledger, probe=False)
    api.allocate_many([("m", 1), ("m", 2), ("m", 3)])
    before = ledger.read_bytes()
    assert api.release_ports("m", 2)
    assert ("m", 2) not in live_pairs()
    ledger.write_bytes(before)  # `git checkout -- portalloc.json`: m/2 is back, on 5003/8003
    api.get_or_allocate_ports("n", 1)
    assert live_pairs()[("m", 2)] == (5003, 8003)
    assert live_pairs() == ledger_pairs(api)


OTHER_LEDGER = """
import sys
from pathlib import Path
from portalloc.service.facade import PortAllocationService
print(*PortAllocationService(Path(sys.argv[1]), probe=False).get_or_allocate_ports("o", 1).ports)
"""


def test_a_long_lived_service_avoids_what_another_ledger_leased_between_its_writes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    api = PortAllocationService(tmp_path / "a" / "portalloc.json", probe=False)
    assert api.get_or_allocate_ports("m", 1).ports == (5001, 8001)
    other = [sys.executable, "-c", OTHER_LEDGER, str(tmp_path / "b" / "portalloc.json")]
    printed = subprocess.run(other, check=True, env=subprocess_env(), capture_output=True, text=True).stdout
    assert printed.split() == ["5003", "8003"]
    assert api.get_or_allocate_ports("m", 2).ports == (5005, 8005)
    assert api.release_ports("m", 1)
    assert api.get_or_allocate_ports("m", 3).ports == (5001, 8001)  # its own released pair is free again
