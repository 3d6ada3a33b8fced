"""A server a local process cannot stall: half-open connections, a stopped writer, idle streams, a chunked body.

Each test runs a real ``portalloc serve`` process and attacks it over real sockets on
127.0.0.1; what is asserted is behaviour (a request answered, connections closed, a
status, a bounded log and memory), never how long something took.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[test]')")
httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install -e '.[test]')")

from tests.reliability.storage import PausedWriter  # noqa: E402
from tests.serving import ServerProcess, kill_group, start_server  # noqa: E402

MiB = 1024 * 1024
#: Writes sent while a stopped writer holds the lock: more than the server's thread pool (40).
WAITING_PUTS = 50


def _readable(connection: socket.socket) -> bool:
    """Whether ``connection`` has data or an end of file to read now (poll: select stops at descriptor 1,023)."""
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    return bool(poller.poll(0))


def _port(server: ServerProcess) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def half_open(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that each send part of a request's headers and then nothing."""
    sockets = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"GET /v1/allocations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: ")
        sockets.append(connection)
    return sockets


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server has closed ``connection`` (end of file or reset), without waiting."""
    if not _readable(connection):
        return False
    try:
        return connection.recv(1) == b""
    except OSError:
        return True


def peak_rss(pid: int) -> int:
    """The process's peak resident memory in bytes (``VmHWM`` in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux's prlimit")
def test_half_open_connections_are_closed_and_others_are_answered_meanwhile(tmp_path: Path) -> None:
    # 512 descriptors leave room for 192 connections: 300 half-open ones would have
    # exhausted them (each accept then failed and logged a traceback, ~5 a millisecond).
    server = start_server(tmp_path, serve_args=["--request-timeout", "1"], wrapper=["prlimit", "--nofile=512:512"])
    attackers: list[socket.socket] = []
    try:
        attackers = half_open(_port(server), 300)
        with server.client() as client:
            assert client.get("/v1/allocations").status_code == 200  # answered during the attack
        for _ in range(300):  # each closes within its 1 s deadline (or sooner, evicted under the cap)
            if all(closed_by_server(s) for s in attackers):
                break
            time.sleep(0.1)
        assert sum(closed_by_server(s) for s in attackers) == 300
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
        code, _, err = server.stop()
    finally:
        for attacker in attackers:
            attacker.close()
        kill_group(server)
    assert code == 0, err
    assert "Traceback" not in err
    assert len(err) < 2000, err  # one line per kind of event, not one per connection


def test_a_flood_of_invalid_requests_logs_one_line_and_a_count(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        for _ in range(300):
            with socket.create_connection(("127.0.0.1", _port(server))) as connection:
                connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                assert connection.recv(64).startswith(b"HTTP/1.1 400")
        code, _, err = server.stop()
    finally:
        kill_group(server)
    assert code == 0, err
    # uvicorn warns once per invalid request: the first is logged, the others counted (one line at the stop).
    assert err.count("Invalid HTTP request received.") == 2, err
    assert "Invalid HTTP request received. (299 more like this were not logged)" in err


def test_reads_complete_while_a_stopped_writer_holds_the_lock(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--lock-timeout", "30")
    writer: PausedWriter | None = None
    pool = ThreadPoolExecutor(WAITING_PUTS)
    try:
        with server.client() as client:
            assert client.put("/v1/allocations/held/1", headers=server.write_headers()).status_code == 201
        writer = PausedWriter(server.ledger, "cli", 1)  # a real writer holding the ledger's lock
        os.kill(writer.process.pid, signal.SIGSTOP)  # as Ctrl-Z on a `portalloc get` would
        with server.client(limits=httpx.Limits(max_connections=WAITING_PUTS)) as waiting:
            pending = [
                pool.submit(waiting.put, f"/v1/allocations/new/{n}", headers=server.write_headers(), timeout=30)
                for n in range(1, WAITING_PUTS + 1)
            ]  # more than the server's 40 threads: the writes beyond 16 must not wait in one
            time.sleep(1)  # let the PUTs reach the lock (a head start, not an assertion)
            with server.client() as client:
                for path in ("/v1/allocations", "/v1/allocations?model=held", "/v1/allocations/held/1", "/v1/check"):
                    assert client.get(path).status_code == 200, path
                for path in ("/v1/stats", "/metrics", "/healthz"):
                    assert client.get(path).status_code == 200, path
                # A key that has its pair is answered as `portalloc get` answers it: without the lock.
                assert client.put("/v1/allocations/held/1", headers=server.write_headers()).status_code == 200
            assert not all(p.done() for p in pending)  # every read above finished while writes still waited
            os.kill(writer.process.pid, signal.SIGCONT)
            assert "pair" in writer.resume()
            answers = [p.result() for p in pending]
        code, _, err = server.stop()
    finally:
        if writer is not None and writer.process.poll() is None:
            os.kill(writer.process.pid, signal.SIGCONT)
            writer.process.kill()
        pool.shutdown()
        kill_group(server)
    assert code == 0, err
    created = [a.json() for a in answers if a.status_code == 201]
    refused = [a.json()["code"] for a in answers if a.status_code != 201]
    assert created and set(refused) <= {"ledger_locked"}, refused  # too many waiting: 503, try again
    ports = [pair[role] for pair in created for role in ("backend", "frontend")]
    assert len(ports) == len(set(ports))


def test_event_streams_past_the_cap_get_503_and_a_closed_one_frees_its_slot(tmp_path: Path) -> None:
    server = start_server(tmp_path, serve_args=["--max-streams", "2"])
    timeout = httpx.Timeout(10, read=10)
    try:
        with server.client() as first, server.client() as second, server.client() as third:
            with (
                first.stream("GET", "/v1/events", timeout=timeout) as a,
                second.stream("GET", "/v1/events", timeout=timeout) as b,
            ):
                lines_a, lines_b = a.iter_lines(), b.iter_lines()
                assert next(lines_a).startswith("id: ") and next(lines_b).startswith("id: ")  # the ready events
                refused = third.get("/v1/events")
                assert refused.status_code == 503
                assert refused.headers["Retry-After"]
                assert refused.json()["code"] == "too_many_streams"
                assert "2 event streams are open" in refused.json()["detail"]
                with server.client() as writer:
                    writer.put("/v1/allocations/m/1", headers=server.write_headers())
                for lines in (lines_a, lines_b):  # one watcher wakes both streams
                    assert next(line for line in lines if line.startswith("event: ") and "ready" not in line) == (
                        "event: change"
                    )
            for _ in range(100):  # the server frees the slots once it sees the clients go
                with third.stream("GET", "/v1/events", timeout=timeout) as c:
                    if c.status_code == 200:
                        assert next(c.iter_lines()).startswith("id: ")
                        break
                time.sleep(0.1)
            else:
                raise AssertionError("a closed stream never gave its slot back")
        code, _, err = server.stop()
    finally:
        kill_group(server)
    assert code == 0, err


def _send_chunked(port: int, headers: dict[str, str], total: int) -> bytes:
    """Send a chunked ``PUT /v1/allocations/batch`` of up to ``total`` bytes; stop early once answered."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    chunk = b"x" * 65536
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(f"POST /v1/allocations/batch HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\n\r\n".encode())
        sent = 0
        while sent < total and not _readable(connection):
            try:
                connection.sendall(b"10000\r\n" + chunk + b"\r\n")
            except OSError:
                break
            sent += len(chunk)
        if sent >= total:
            connection.sendall(b"0\r\n\r\n")
        connection.settimeout(30)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _content_length(answer):
            data = connection.recv(65536)
            if not data:
                break
            answer += data
        return answer


def _content_length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_a_chunked_body_over_the_limit_gets_413_and_is_not_kept(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        before = peak_rss(server.process.pid)
        headers = {"Host": "127.0.0.1", **server.write_headers()}
        answer = _send_chunked(_port(server), headers, 64 * MiB)  # no Content-Length to check
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["code"] == "body_too_large"
        assert peak_rss(server.process.pid) - before < 24 * MiB  # the 64 MiB were never held
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
        code, _, err = server.stop()
    finally:
        kill_group(server)
    assert code == 0, err
    assert "Traceback" not in err
