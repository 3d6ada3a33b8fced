"""Scaffolders racing ``cleanup``: does cleanup ever release a live app?

Each scaffolder process makes apps the way the platform does: an allocation and an app
directory (and a file in it with the ports it was given). Meanwhile a cleanup process
runs ``cleanup_orphaned_allocations`` in a loop. Afterwards every app whose directory
exists must still hold, in the ledger, the pair written into its directory, and no
port may be held twice. ``order="dir-first"`` is the documented rule
(``PortAllocationService.allocate_app_dir``); ``"allocate-first"`` is the old way (get
the ports, then mkdir), whose window cleanup can fall into.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.processes import child_env

_SCAFFOLDER = """
import sys
from pathlib import Path
from portalloc import PortAllocationService
from portalloc.core.keys import app_dir
ledger, apps, model, count, order = sys.argv[1:6]
service = PortAllocationService(ledger, probe=False)
for n in range(1, int(count) + 1):
    if order == "dir-first":
        pair, directory = service.allocate_app_dir(apps, model, n)
    else:
        pair = service.get_or_allocate_ports(model, n)
        directory = app_dir(Path(apps), model, n)
        directory.mkdir(parents=True)
    (directory / "ports").write_text(f"{pair.backend} {pair.frontend}")
"""

_CLEANER = """
import sys
from pathlib import Path
from portalloc import PortAllocationService
ledger, apps, stop = sys.argv[1:4]
service = PortAllocationService(ledger, probe=False)
runs = released = 0
while not Path(stop).exists():
    released += len(service.cleanup_orphaned_allocations(apps))
    runs += 1
print(runs, released)
"""


@dataclass(frozen=True)
class CleanupRaceResult:
    """What one race did: apps made, live apps cleanup released, ports held twice, cleanup runs."""

    order: str
    scaffolders: int
    apps: int
    released_live: int
    #: Live apps whose pair the ledger now gives to another app (what cleanup's release led to).
    reissued: int
    duplicates: int
    cleanup_runs: int
    errors: int
    wall_s: float


def run_cleanup_race(root: Path, *, scaffolders: int, apps_each: int, order: str) -> CleanupRaceResult:
    """Race ``scaffolders`` processes making ``apps_each`` apps each against a looping cleanup, under ``root``."""
    from portalloc import PortAllocationService

    root.mkdir(parents=True, exist_ok=True)
    ledger, apps, stop = root / "portalloc.json", root / "apps", root / "stop"
    apps.mkdir()
    # One app that stays: without it, an early cleanup would (rightly) refuse an apps dir with no app in it.
    PortAllocationService(ledger, probe=False).allocate_app_dir(apps, "anchor", 1)
    env = child_env()
    started = time.perf_counter()
    cleaner = subprocess.Popen(
        [sys.executable, "-c", _CLEANER, str(ledger), str(apps), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    makers = [
        subprocess.Popen(
            [sys.executable, "-c", _SCAFFOLDER, str(ledger), str(apps), f"team/model-{n}", str(apps_each), order],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(scaffolders)
    ]
    errors = sum(1 for maker in makers if maker.wait() != 0)
    stop.touch()
    out, _ = cleaner.communicate()
    errors += cleaner.returncode != 0
    wall = time.perf_counter() - started
    runs = int(out.split()[0]) if cleaner.returncode == 0 else 0
    rows = json.loads(ledger.read_text())["allocations"]
    held = {(row["model"], row["app_num"]): f"{row['backend']} {row['frontend']}" for row in rows}
    ports = [row[role] for row in rows for role in ("backend", "frontend")]
    holder_of = {port: key for key, pair in held.items() for port in map(int, pair.split())}
    made = sorted(apps.glob("*/app*/ports"))
    released_live = reissued = 0
    for ports_file in made:
        key = (_model_of(ports_file.parent.parent.name), int(ports_file.parent.name.removeprefix("app")))
        written = ports_file.read_text()
        if held.get(key) != written:
            released_live += 1
            reissued += any(holder_of.get(int(port), key) != key for port in written.split())
    duplicates = len(ports) - len(set(ports))
    return CleanupRaceResult(order, scaffolders, len(made), released_live, reissued, duplicates, runs, errors, wall)


def _model_of(directory: str) -> str:
    from urllib.parse import unquote

    return unquote(directory)  # model_dir_name is reversed by unquote
