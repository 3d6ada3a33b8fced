"""Part (g): a local process attacks ``portalloc serve``; how long a read takes meanwhile.

Each attack runs against a fresh server (a real process, real sockets on 127.0.0.1)
started with 1,024 file descriptors, the common default that the half-open attack
exhausted when it was found (issue 21), or 4,096 where the attack needs more sockets.
During the attack fresh connections read ``GET /v1/allocations`` (and, for the stopped
writer, ``/v1/check`` and ``/metrics`` too); the figures are how long those reads took,
how many failed, what became of the attacker's connections, how many bytes the
server logged, and its peak memory.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.reliability.storage import PausedWriter
from tests.serving import ServerProcess, kill_group, start_server

MiB = 1024 * 1024
#: Seconds the event streams are left idle while the server's CPU time is counted.
IDLE_SECONDS = 5
_PARTIAL_REQUEST = b"GET /v1/allocations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: "


def _readable(connection: socket.socket) -> bool:
    """Whether ``connection`` has data or an end of file to read now (poll: select stops at descriptor 1,023)."""
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    return bool(poller.poll(0))


@dataclass
class AttackResult:
    """One attack's figures."""

    attack: str
    read_ms: list[float] = field(default_factory=list)
    failed_reads: int = 0
    #: ``PUT`` of a new key, timed, where the attack has writes measured.
    write_ms: list[float] = field(default_factory=list)
    #: What became of the attack (connections closed by the server, streams refused, 413s…).
    outcome: str = ""
    log_bytes: int = 0
    #: The log's distinct lines.
    log_lines: list[str] = field(default_factory=list)
    peak_rss_mib: float = 0.0


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


#: A client that opens a fresh connection for every request, as a new tool would.
_FRESH = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read(server: ServerProcess, result: AttackResult, path: str = "/v1/allocations") -> None:
    """One read on a fresh connection, timed; a failure (or a 30 s wait) counts as failed."""
    started = time.perf_counter()
    try:
        ok = _FRESH.get(server.base_url + path).status_code == 200
    except httpx.HTTPError:
        ok = False
    if ok:
        result.read_ms.append((time.perf_counter() - started) * 1000)
    else:
        result.failed_reads += 1


@contextmanager
def _server(
    result: AttackResult, *serve_args: str, fds: int = 1024, global_args: tuple[str, ...] = ()
) -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory(prefix="portalloc-attack-") as scratch:
        server = start_server(
            Path(scratch), *global_args, serve_args=serve_args, wrapper=["prlimit", f"--nofile={fds}:{fds}"]
        )
        try:
            yield server
            result.peak_rss_mib = _peak_rss_mib(server.process.pid)
            _, _, err = server.stop()
            result.log_bytes = len(err.encode())
            result.log_lines = sorted(set(err.splitlines()))
        finally:
            kill_group(server)


def _closed(connection: socket.socket) -> bool:
    if not _readable(connection):
        return False
    try:
        return connection.recv(1) == b""
    except OSError:
        return True


def run_baseline(reads: int) -> AttackResult:
    """No attack: the figures to compare with."""
    result = AttackResult("none (baseline)")
    with _server(result) as server:
        for _ in range(reads):
            _read(server, result)
        result.outcome = "-"
    return result


def run_half_open(connections: int, reads: int) -> AttackResult:
    """``connections`` sockets that send half a request line and stop, with the default limits."""
    result = AttackResult(f"{connections:,} half-open connections")
    with _server(result) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        attackers = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
        try:
            for attacker in attackers:
                attacker.sendall(_PARTIAL_REQUEST)
            for _ in range(reads):
                _read(server, result)
            deadline = time.monotonic() + 30  # the request timeout is 10 s
            while time.monotonic() < deadline and not all(_closed(a) for a in attackers):
                time.sleep(0.2)
            closed = sum(_closed(a) for a in attackers)
            result.outcome = f"{closed:,} of {connections:,} closed by the server"
        finally:
            for attacker in attackers:
                attacker.close()
    return result


def run_stuck_writer(reads: int, writes: int = 50) -> AttackResult:
    """A ``portalloc`` writer stopped (SIGSTOP) while it holds the lock, ``writes`` ``PUT`` s waiting behind it."""
    result = AttackResult(f"a writer stopped holding the lock, {writes} PUTs sent")
    with _server(result, global_args=("--lock-timeout", "60")) as server:
        writer = PausedWriter(server.ledger, "stuck", 1)
        os.kill(writer.process.pid, signal.SIGSTOP)
        statuses: list[int] = []
        headers = server.write_headers()

        def put(number: int) -> None:
            answer = _FRESH.put(f"{server.base_url}/v1/allocations/new/{number}", headers=headers, timeout=90)
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=put, args=(number,)) for number in range(1, writes + 1)]
        try:
            for thread in threads:
                thread.start()
            time.sleep(1)  # the PUTs reach the lock
            for number in range(reads):
                _read(server, result, ("/v1/allocations", "/v1/check", "/metrics", "/v1/stats")[number % 4])
            waiting = writes - len(statuses)
        finally:
            os.kill(writer.process.pid, signal.SIGCONT)
        writer.resume()
        for thread in threads:
            thread.join()
        result.outcome = (
            f"{waiting} PUTs still waiting after the reads, then {statuses.count(201)} got 201; "
            f"{statuses.count(503)} got 503 at once (too many waiting)"
        )
    return result


def run_event_streams(streams: int, reads: int, max_streams: int) -> AttackResult:
    """``streams`` idle ``/v1/events`` streams (nobody reads them), ``max_streams`` allowed."""
    result = AttackResult(f"{streams:,} idle event streams (--max-streams {max_streams:,})")
    limits = ("--max-streams", str(max_streams), "--max-connections", str(streams + 100))
    with _server(result, *limits, fds=4096) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        attackers: list[socket.socket] = []
        try:
            for _ in range(streams):
                attackers.append(socket.create_connection(("127.0.0.1", port)))
                attackers[-1].sendall(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            statuses = [attacker.recv(12)[9:12] for attacker in attackers]
            cpu = _cpu_seconds(server.process.pid)
            time.sleep(IDLE_SECONDS)  # nothing happens: what do the open streams cost?
            idle = (_cpu_seconds(server.process.pid) - cpu) / IDLE_SECONDS * 100
            for number in range(reads):
                _read(server, result)
                started = time.perf_counter()
                _FRESH.put(f"{server.base_url}/v1/allocations/m/{number + 1}", headers=server.write_headers())
                result.write_ms.append((time.perf_counter() - started) * 1000)
            result.outcome = (
                f"{statuses.count(b'200'):,} streaming, {statuses.count(b'503'):,} refused (503); "
                f"server CPU while they idle: {idle:.0f}%"
            )
        finally:
            for attacker in attackers:
                attacker.close()
    return result


def run_chunked_bodies(megabytes: int, reads: int) -> AttackResult:
    """Chunked bodies of ``megabytes`` MiB sent one after another while the reads run."""
    result = AttackResult(f"chunked {megabytes} MiB bodies, one after another")
    with _server(result) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        done = threading.Event()
        answers: list[bytes] = []
        sender = threading.Thread(target=_send_bodies, args=(port, server.write_headers(), megabytes, done, answers))
        sender.start()
        try:
            while not answers:  # the attack is under way
                time.sleep(0.01)
            for _ in range(reads):
                _read(server, result)
        finally:
            done.set()
            sender.join()
        refused = sum(a.startswith(b"HTTP/1.1 413") for a in answers)
        result.outcome = f"{refused} of {len(answers)} bodies answered 413 after at most 4 MiB"
    return result


def _send_bodies(
    port: int, headers: dict[str, str], megabytes: int, done: threading.Event, answers: list[bytes]
) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": "127.0.0.1", **headers}.items())
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    while not done.is_set():
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(
                f"POST /v1/allocations/batch HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            for _ in range(megabytes * 16):
                if _readable(connection):
                    break
                try:
                    connection.sendall(chunk)
                except OSError:
                    break
            connection.settimeout(30)
            try:
                answers.append(connection.recv(4096))
            except OSError:
                answers.append(b"")


def spread(values: list[float]) -> str:
    """``median / max`` in milliseconds, or ``-``."""
    return f"{statistics.median(values):.1f} / {max(values):.1f}" if values else "-"


def run_server_attacks(reads: int = 20, streams: int = 2000) -> list[AttackResult]:
    """Every attack, each against its own server."""
    attacks: list[Callable[[], AttackResult]] = [
        lambda: run_baseline(reads),
        lambda: run_half_open(1100, reads),
        lambda: run_stuck_writer(reads),
        lambda: run_event_streams(streams, reads, max_streams=streams),
        lambda: run_event_streams(150, reads, max_streams=100),
        lambda: run_chunked_bodies(300, reads),
    ]
    return [attack() for attack in attacks]
