"""Contention: P processes x M new allocations each, through the real CLI and the API, one ledger.

Every worker asks for keys nobody else asks for, all at once, so every call is a
read-modify-write that races every other. Afterwards the ledger must hold every key
that was asked for, with exactly the pair its caller was told, and no port twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.processes import child_env, portalloc_script

Key = tuple[str, int]
Pair = tuple[int, int]

#: Generous: 16 writers queue for the lock, and a slow CI machine must not turn that into errors.
LOCK_TIMEOUT = 120.0


@dataclass(frozen=True)
class ContentionResult:
    """One row of the contention table."""

    front_end: str
    processes: int
    requested: int
    present: int
    duplicates: int
    lost: int
    errors: int
    wall_seconds: float
    error_samples: tuple[str, ...] = ()


def run_contention(
    ledger: Path, *, cli_workers: int, api_workers: int, per_worker: int, label: str
) -> ContentionResult:
    """Start ``cli_workers`` CLI loops and ``api_workers`` forked API processes at once on ``ledger``.

    Each worker allocates ``per_worker`` new keys of its own, one call at a time; a CLI
    worker runs ``portalloc get`` as a fresh process per key. The ledger is created
    first, as ``portalloc init`` makes it (a CLI write away from a repository root may not).
    """
    from portalloc.core.models import Ledger
    from portalloc.storage.ledger import LedgerFile

    LedgerFile(ledger).create(Ledger())
    answers: list[tuple[Key, Pair]] = []
    errors: list[str] = []
    guard = threading.Lock()
    results_dir = ledger.parent / f"{ledger.stem}-results"
    results_dir.mkdir()

    # Fork the API workers before any thread exists; they wait for the starting gun.
    gun_read, gun_write = os.pipe()
    pids = [
        _fork_api_worker(ledger, f"api-{w}", per_worker, results_dir, (gun_read, gun_write)) for w in range(api_workers)
    ]
    os.close(gun_read)

    def cli_worker(model: str) -> None:
        for app_num in range(1, per_worker + 1):
            answer, error = _cli_get(ledger, model, app_num)
            with guard:
                if answer is not None:
                    answers.append(answer)
                else:
                    errors.append(error)

    threads = [threading.Thread(target=cli_worker, args=(f"cli-{w}",)) for w in range(cli_workers)]
    started = time.perf_counter()
    os.close(gun_write)  # EOF on the pipe: every API worker starts now
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for pid in pids:
        os.waitpid(pid, 0)
    wall = time.perf_counter() - started

    for result_file in sorted(results_dir.iterdir()):
        for line in result_file.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "error" in row:
                errors.append(row["error"])
            else:
                answers.append(((row["model"], row["app_num"]), (row["backend"], row["frontend"])))

    requested = (cli_workers + api_workers) * per_worker
    wanted = {(f"cli-{w}", n) for w in range(cli_workers) for n in range(1, per_worker + 1)}
    wanted |= {(f"api-{w}", n) for w in range(api_workers) for n in range(1, per_worker + 1)}
    present, duplicates, lost = _audit(ledger, wanted, answers)
    return ContentionResult(
        front_end=label,
        processes=cli_workers + api_workers,
        requested=requested,
        present=present,
        duplicates=duplicates,
        lost=lost,
        errors=len(errors),
        wall_seconds=wall,
        error_samples=tuple(errors[:3]),
    )


def _cli_get(ledger: Path, model: str, app_num: int) -> tuple[tuple[Key, Pair] | None, str]:
    command = [portalloc_script(), "--ledger", str(ledger), "--lock-timeout", str(LOCK_TIMEOUT)]
    done = subprocess.run(
        [*command, "get", model, str(app_num), "--json"], capture_output=True, text=True, env=child_env()
    )
    if done.returncode != 0:
        return None, (done.stderr.strip() or f"exit {done.returncode}")
    row = json.loads(done.stdout)
    return ((row["model"], row["app_num"]), (row["backend"], row["frontend"])), ""


def _fork_api_worker(ledger: Path, model: str, count: int, results_dir: Path, gun: tuple[int, int]) -> int:
    pid = os.fork()
    if pid:
        return pid
    status = 0
    try:  # child: allocate, append each answer as it returns, never return into the caller
        from portalloc.errors import PortallocError
        from portalloc.service.facade import PortAllocationService

        os.close(gun[1])  # only the parent may hold the write end, or EOF never comes
        os.read(gun[0], 1)
        service = PortAllocationService(ledger, lock_timeout=LOCK_TIMEOUT)
        with open(results_dir / f"{model}.jsonl", "w", encoding="utf-8") as out:
            for app_num in range(1, count + 1):
                try:
                    pair = service.get_or_allocate_ports(model, app_num)
                    row: dict[str, object] = {
                        "model": model,
                        "app_num": app_num,
                        "backend": pair.backend,
                        "frontend": pair.frontend,
                    }
                except PortallocError as error:
                    row = {"error": str(error)}
                out.write(json.dumps(row) + "\n")
                out.flush()
    except BaseException:
        status = 70
    finally:
        os._exit(status)


def _audit(ledger: Path, wanted: set[Key], answers: list[tuple[Key, Pair]]) -> tuple[int, int, int]:
    """``(present, duplicates, lost)`` for the final ledger against what callers were told."""
    from portalloc.storage.codec import parse_ledger

    parsed = parse_ledger(ledger.read_bytes(), ledger)
    held = {a.key: a.ports for a in parsed.allocations}
    present = len(wanted & held.keys())
    # Lost: a caller was given a pair that the ledger does not hold for its key.
    lost = sum(1 for key, pair in answers if held.get(key) != pair)
    # Duplicates: a port promised to two keys (in the answers or in the ledger), or a key on two rows.
    owners: dict[int, set[Key]] = defaultdict(set)
    for key, pair in [*answers, *((a.key, a.ports) for a in parsed.allocations)]:
        for port in pair:
            owners[port].add(key)
    duplicates = sum(1 for keys in owners.values() if len(keys) > 1) + len(parsed.allocations) - len(held)
    return present, duplicates, lost
