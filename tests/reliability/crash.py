"""Crash injection and lock-holder death: SIGKILL a real writer process and audit the ledger.

*Crash injection.* A forked writer allocates and releases in a loop on one ledger and
reports on a pipe, before each call, what it is about to do and, after it returns,
what it got. The harness kills it with SIGKILL at a random moment, then checks that the
ledger parses, has no conflicts, holds every allocation whose call had returned and
none whose release had returned (the one call in flight may have landed or not), and
holds nothing nobody asked for. Then the next writer starts on the same ledger.

*Lock-holder death.* A writer is killed while it holds the lock in the middle of a
read-modify-write. While it lives, another writer must time out naming the lock file;
once it is dead, the next writer must get the lock as fast as an uncontended one (the
kernel drops a dead process's ``flock``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.processes import child_env, portalloc_script

Key = tuple[str, int]
Pair = tuple[int, int]

#: A writer keeps at most this many keys, so the ledger stays well inside the default policy.
MAX_HELD = 200


@dataclass
class CrashResult:
    """The crash-injection row."""

    trials: int = 0
    calls_returned: int = 0
    corrupt: int = 0
    conflicted: int = 0
    lost: int = 0
    unexpected: int = 0
    writer_errors: int = 0
    kills_leaving_temp: int = 0
    temps_after_next_write: int = 0
    samples: list[str] = field(default_factory=list)


def temp_files(ledger: Path) -> list[Path]:
    """Temp files that ``atomic_write`` left beside ``ledger`` (``.<name>.<pid>.<random>.tmp``)."""
    return sorted(ledger.parent.glob(f".{ledger.name}.*.tmp"))


def run_crash_injection(ledger: Path, *, kills: int, seed: int, max_delay: float = 0.1) -> CrashResult:
    """Kill ``kills`` writers on ``ledger``, each after a random ``0..max_delay`` seconds of work."""
    from portalloc.core.audit import find_conflicts
    from portalloc.errors import LedgerCorrupt
    from portalloc.service.facade import PortAllocationService
    from portalloc.storage.codec import parse_ledger

    # One write and one release here first, so that every forked writer starts with all
    # of the write path imported and spends its short life writing, not importing.
    warm = PortAllocationService(ledger)
    warm.get_or_allocate_ports("warm-up", 1)
    warm.release_ports("warm-up", 1)
    rng = random.Random(seed)
    expected: dict[Key, Pair] = {}
    result = CrashResult()
    for trial in range(kills):
        lines = _kill_a_writer(ledger, trial, sorted(expected), rng.randrange(2**32), rng.uniform(0, max_delay))
        in_flight: Key | None = None
        for line in lines:
            kind, *rest = line.split(" ")
            if kind == "E":
                result.writer_errors += 1
                result.samples.append(line)
                continue
            key = (rest[0], int(rest[1])) if kind in ("?A", "?R", "A", "R") else None
            if kind in ("?A", "?R"):
                in_flight = key
            elif kind == "A" and key is not None:
                expected[key] = (int(rest[2]), int(rest[3]))
                result.calls_returned += 1
                in_flight = None
            elif kind == "R" and key is not None:
                expected.pop(key, None)
                result.calls_returned += 1
                in_flight = None
        result.trials += 1
        if temp_files(ledger):
            result.kills_leaving_temp += 1
        try:
            parsed = parse_ledger(ledger.read_bytes(), ledger)
        except LedgerCorrupt as error:
            result.corrupt += 1
            result.samples.append(str(error))
            break  # every later trial would only repeat it
        held = {a.key: a.ports for a in parsed.allocations}
        if find_conflicts(parsed.allocations):
            result.conflicted += 1
        for key, pair in expected.items():
            if key != in_flight and held.get(key) != pair:
                result.lost += 1
                result.samples.append(f"trial {trial}: {key} returned {pair}, ledger has {held.get(key)}")
        for key in held.keys() - expected.keys():
            if key != in_flight:
                result.unexpected += 1
                result.samples.append(f"trial {trial}: {key} is in the ledger but no call returned it")
        # Whatever the killed call did is now the truth; the next writer starts from the file.
        expected = dict(held)
    # One more ordinary write must sweep the temp files of the dead writers.
    PortAllocationService(ledger).get_or_allocate_ports("after-crash", 1)
    result.temps_after_next_write = len(temp_files(ledger))
    return result


def _kill_a_writer(ledger: Path, trial: int, held: list[Key], seed: int, delay: float) -> list[str]:
    """Fork a writer, let it work ``delay`` seconds after it is ready, SIGKILL it; return its complete lines."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _writer(ledger, f"crash-{trial}", held, seed, write_end)  # never returns
    os.close(write_end)
    buffer = b""
    with os.fdopen(read_end, "rb", buffering=0) as reader:
        while b"\n" not in buffer:  # wait until it has imported and opened the service
            chunk = reader.read(4096)
            if not chunk:
                break
            buffer += chunk
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while chunk := reader.read(65536):
            buffer += chunk
    # A line the kill cut short was never reported, so it does not count.
    complete = buffer.split(b"\n")[:-1]
    return [line.decode() for line in complete[1:]]  # the first line is "ready"


def _writer(ledger: Path, model: str, held: list[Key], seed: int, out: int) -> None:
    status = 0
    try:
        from portalloc.errors import PortallocError
        from portalloc.service.facade import PortAllocationService

        rng = random.Random(seed)
        service = PortAllocationService(ledger, lock_timeout=30)
        keys = list(held)
        os.write(out, b"ready\n")
        app_num = 0
        while True:
            try:
                if keys and (len(keys) >= MAX_HELD or rng.random() < 0.25):
                    key = keys.pop(rng.randrange(len(keys)))
                    os.write(out, f"?R {key[0]} {key[1]}\n".encode())
                    service.release_ports(*key)
                    os.write(out, f"R {key[0]} {key[1]}\n".encode())
                else:
                    app_num += 1
                    os.write(out, f"?A {model} {app_num}\n".encode())
                    pair = service.get_or_allocate_ports(model, app_num)
                    keys.append((model, app_num))
                    os.write(out, f"A {model} {app_num} {pair.backend} {pair.frontend}\n".encode())
            except PortallocError as error:
                os.write(out, f"E {error}\n".encode())
                status = 1
                return
    finally:
        os._exit(status)


@dataclass
class LockDeathResult:
    """The lock-holder-death row."""

    trials: int = 0
    timed_out_while_held: int = 0
    named_lock_file: int = 0
    acquired_after_death: int = 0
    cli_ok_after_death: int = 0
    wait_after_death_ms: list[float] = field(default_factory=list)
    wait_uncontended_ms: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)


def run_lock_holder_death(ledger: Path, *, trials: int, held_timeout: float = 0.2) -> LockDeathResult:
    """Kill a writer that holds the lock ``trials`` times; prove the lock is held, then free."""
    from portalloc.core.models import Ledger
    from portalloc.errors import LedgerLocked
    from portalloc.service.facade import PortAllocationService
    from portalloc.storage.ledger import LedgerFile
    from portalloc.storage.locking import lock_path
    from tests.testing.storage import locked

    LedgerFile(ledger).create(Ledger())  # as `portalloc init` makes it
    result = LockDeathResult()
    lock_file = str(lock_path(ledger))
    for trial in range(trials):
        started = time.perf_counter()
        with locked(ledger, timeout=5):
            result.wait_uncontended_ms.append((time.perf_counter() - started) * 1000)
        pid = fork_lock_holder(ledger)
        result.trials += 1
        # While the holder lives: the CLI and the API both give up, naming the lock file.
        cli = _cli_get(ledger, held_timeout, trial + 1)
        try:
            PortAllocationService(ledger, lock_timeout=held_timeout).get_or_allocate_ports("lock-death", trial + 1)
            api_timed_out = False
        except LedgerLocked as error:
            api_timed_out = lock_file in str(error)
        if cli.returncode == 1 and api_timed_out:
            result.timed_out_while_held += 1
        else:
            result.samples.append(f"trial {trial}: while held, cli exit {cli.returncode}: {cli.stderr.strip()}")
        if cli.stderr.startswith("Error: ") and lock_file in cli.stderr:
            result.named_lock_file += 1
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        # After death: the lock is free at once (5 s is only a guard against hanging the harness).
        started = time.perf_counter()
        try:
            with locked(ledger, timeout=5):
                result.wait_after_death_ms.append((time.perf_counter() - started) * 1000)
                result.acquired_after_death += 1
        except LedgerLocked as error:
            result.samples.append(f"trial {trial}: after death: {error}")
        cli = _cli_get(ledger, 5, trial + 1)
        if cli.returncode == 0:
            result.cli_ok_after_death += 1
        else:
            result.samples.append(f"trial {trial}: cli after death: {cli.stderr.strip()}")
    return result


def _cli_get(ledger: Path, lock_timeout: float, app_num: int) -> subprocess.CompletedProcess[str]:
    command = [portalloc_script(), "--ledger", str(ledger), "--lock-timeout", str(lock_timeout)]
    return subprocess.run(
        [*command, "get", "lock-death", str(app_num)], capture_output=True, text=True, env=child_env()
    )


def fork_lock_holder(ledger: Path) -> int:
    """Fork a writer that stops in the middle of its read-modify-write, lock held; return its pid."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            from portalloc.storage.ledgerdir import read_bytes
            from tests.testing.storage import locked

            with locked(ledger):
                read_bytes(ledger)  # the "read" of read-modify-write; it never gets to write
                os.write(write_end, b"locked\n")
                time.sleep(3600)
        finally:
            os._exit(70)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        if reader.readline() != b"locked\n":
            raise RuntimeError("the lock holder died before it took the lock")
    return pid
