"""OS-aware allocation and live status, with real sockets on 127.0.0.1 and ::1.

Every test works in a randomly placed block of ports between 20000 and 30000 (below
Linux's ephemeral range and away from the default policy's 5001-10999), so that other
test runs on the machine neither disturb it nor are disturbed by it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from portalloc import PortAllocationService
from portalloc.core.allocator import assign_many
from portalloc.core.models import Ledger, PortPolicy
from portalloc.errors import NoFreePair
from portalloc.machine import probe
from portalloc.machine.probe import PortState
from tests.conftest import RunCli, portalloc_script, subprocess_env

pytestmark = pytest.mark.machine

BLOCK = 20  # 10 pairs: backends base..base+9, frontends base+10..base+19


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _has_ipv6()
IS_LINUX = sys.platform.startswith("linux")


@pytest.fixture
def base() -> int:
    """The first port of a block of ``BLOCK`` ports that are all free now."""
    rng = random.Random()
    for _ in range(200):
        start = rng.randrange(20000, 30000 - BLOCK)
        if all(probe.is_free(port) for port in range(start, start + BLOCK)):
            return start
    pytest.skip("no block of free ports found between 20000 and 30000")


def block_policy(base: int, **extra: bool) -> PortPolicy:
    return PortPolicy(backend_start=base, frontend_start=base + 10, step=1, max_port=base + BLOCK - 1, **extra)


@contextmanager
def held(port: int, address: str = "127.0.0.1", *, listen: bool = True) -> Iterator[socket.socket]:
    """A socket of this test process bound to ``address:port`` (listening unless ``listen=False``)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        if listen:
            sock.listen()
        yield sock
    finally:
        sock.close()


# --- the probe itself ---------------------------------------------------------------------


def test_free_port_is_free(base: int) -> None:
    assert probe.is_free(base)
    assert probe.port_state(base) is PortState.FREE
    assert not probe.accepts_connections(base)


def test_listener_on_127_0_0_1_is_listening(base: int) -> None:
    with held(base):
        assert not probe.is_free(base)
        assert probe.port_state(base) is PortState.LISTENING
        assert probe.accepts_connections(base)
    assert probe.port_state(base) is PortState.FREE


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 on this machine")
def test_listener_on_ipv6_loopback_only_blocks_the_port(base: int) -> None:
    # IPv4 and IPv6 are separate port spaces: 127.0.0.1 alone would say "free".
    with held(base, "::1"):
        with socket.socket(socket.AF_INET) as v4:
            v4.bind(("127.0.0.1", base))  # the IPv4 side really is free
        assert probe.port_state(base) is PortState.LISTENING


def test_bound_but_not_listening_is_blocked_not_listening(base: int) -> None:
    with held(base, listen=False):
        assert not probe.is_free(base)
        assert probe.port_state(base) is PortState.BLOCKED


def _hold_every_way(port: int) -> Iterator[tuple[str, socket.socket]]:
    """Each way a server may hold ``port``, as a socket bound (and listening) that way, one after another."""
    ways: list[tuple[str, int, str, dict[int, int]]] = [
        ("127.0.0.1 with SO_REUSEADDR", socket.AF_INET, "127.0.0.1", {socket.SO_REUSEADDR: 1}),
        ("0.0.0.0 with SO_REUSEPORT", socket.AF_INET, "0.0.0.0", {socket.SO_REUSEPORT: 1}),
    ]
    if IS_LINUX:
        ways.append(("127.0.0.2 (Linux's loopback is all of 127/8)", socket.AF_INET, "127.0.0.2", {}))
    if HAS_IPV6:
        ways += [
            ("::1 with SO_REUSEADDR", socket.AF_INET6, "::1", {socket.SO_REUSEADDR: 1}),
            (":: dual-stack", socket.AF_INET6, "::", {}),
            ("::ffff:127.0.0.1 (v4-mapped)", socket.AF_INET6, "::ffff:127.0.0.1", {}),
        ]
    for what, family, address, options in ways:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # dual-stack where it can be
            for option, value in options.items():
                sock.setsockopt(socket.SOL_SOCKET, option, value)
            sock.bind((address, port))
            sock.listen()
            yield what, sock


def test_a_port_held_any_way_a_server_holds_one_is_not_free(base: int) -> None:
    """Whatever the bind tests are on this OS (on Linux the two wildcards, which the kernel refuses
    whenever any address of their family holds the port), none of these may pass as free."""
    seen = []
    for what, _sock in _hold_every_way(base):
        seen.append(what)
        assert not probe.is_free(base), what
        assert probe.port_state(base) is not PortState.FREE, what
    assert probe.is_free(base)
    assert len(seen) >= 2


def _time_wait_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "06":  # TIME_WAIT
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@contextmanager
def time_wait(port: int) -> Iterator[None]:
    """Leave ``port`` in TIME_WAIT: the side that closes first keeps it there for a minute on Linux."""
    with held(port) as server:
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first, so *its* port (``port``) goes to TIME_WAIT
        client.close()
    for _ in range(500):  # the FIN/ACK exchange on loopback takes microseconds; wait for the kernel to show it
        if port in _time_wait_ports():
            break
        time.sleep(0.01)
    else:
        pytest.skip("the kernel did not show TIME_WAIT")
    yield


@pytest.mark.skipif(not IS_LINUX, reason="reads /proc/net/tcp to confirm TIME_WAIT")
def test_time_wait_is_skipped_for_allocation_but_not_reported_as_held(base: int, ledger_path: Path) -> None:
    with time_wait(base):
        assert probe.port_state(base) is PortState.BLOCKED
        service = PortAllocationService(ledger_path, policy=block_policy(base))
        assert service.get_or_allocate_ports("m", 1).ports == (base + 1, base + 11)
        service.release_ports("m", 1)
        with held(base + 10):  # and status: nothing held in TIME_WAIT, the live port is
            PortAllocationService(ledger_path, probe=False).get_or_allocate_ports("m", 2)
            (pair,) = service.live_status()
    assert [(r.port, r.state, r.held) for r in pair.ports] == [
        (base, PortState.BLOCKED, False),
        (base + 10, PortState.LISTENING, True),
    ]


@pytest.mark.skipif(not IS_LINUX, reason="/proc")
def test_holders_names_this_process(base: int) -> None:
    with held(base):
        table = probe.listening_sockets()
        assert table is not None and base in table
        found = probe.holders(table[base])
    holders = [holder for group in found.values() for holder in group]
    assert [holder.pid for holder in holders] == [os.getpid()]
    assert holders[0].name == probe.process_name(os.getpid()) != "?"


@pytest.mark.skipif(not IS_LINUX, reason="netlink sock_diag and /proc/net/tcp are Linux's")
def test_listening_table_from_netlink_matches_proc_net_tcp(base: int) -> None:
    with held(base), held(base + 1, "::1") if HAS_IPV6 else held(base + 1):
        by_netlink = probe._listening_via_netlink()
        by_proc = probe._listening_via_proc()
        assert probe.listening_sockets() == {port: frozenset(inodes) for port, inodes in by_netlink.items()}
    assert by_proc is not None
    assert {base, base + 1} <= by_netlink.keys()
    assert by_netlink[base] == by_proc[base] and by_netlink[base + 1] == by_proc[base + 1]


def test_ephemeral_range(tmp_path: Path) -> None:
    range_file = tmp_path / "ip_local_port_range"
    range_file.write_text("32768\t60999\n")
    assert probe.ephemeral_range(range_file) == (32768, 60999)
    range_file.write_text("nonsense\n")
    assert probe.ephemeral_range(range_file) is None
    assert probe.ephemeral_range(tmp_path / "absent") is None
    if IS_LINUX:
        assert probe.ephemeral_range() is not None


# --- allocation ---------------------------------------------------------------------------


def test_a_port_held_before_allocation_is_never_handed_out(base: int, ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path, policy=block_policy(base))
    with held(base + 11):  # the frontend of pair 1
        pairs = [service.get_or_allocate_ports("m", n).ports for n in (1, 2, 3)]
    assert pairs == [(base, base + 10), (base + 2, base + 12), (base + 3, base + 13)]


def test_the_service_answer_is_the_pure_allocator_given_what_the_probe_found(base: int, ledger_path: Path) -> None:
    # The probe is injected as data: the result equals assign_many with the busy ports as ``taken``.
    keys = [("m", 1), ("m", 2), ("n", 1)]
    service = PortAllocationService(ledger_path, policy=block_policy(base))
    with held(base), held(base + 12):
        got = [a.ports for a in service.allocate_many(keys)]
    _, expected = assign_many(Ledger(policy=block_policy(base)), keys, taken={base, base + 12})
    assert got == [a.allocation.ports for a in expected]
    assert got == [(base + 1, base + 11), (base + 3, base + 13), (base + 4, base + 14)]


def test_existing_allocation_is_never_moved(base: int, ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path, policy=block_policy(base))
    first = service.get_or_allocate_ports("m", 1).ports
    with held(first[0]):
        assert service.get_or_allocate_ports("m", 1).ports == first


def test_probe_off_by_flag_or_policy_hands_out_busy_ports(base: int, tmp_path: Path) -> None:
    with held(base):
        # Two ledgers on one machine: without leases off, the second would (rightly) avoid the first's pair.
        by_flag = PortAllocationService(tmp_path / "a.json", policy=block_policy(base), probe=False, leases=False)
        assert by_flag.get_or_allocate_ports("m", 1).ports == (base, base + 10)
        by_policy = PortAllocationService(tmp_path / "b.json", policy=block_policy(base, probe=False), leases=False)
        assert by_policy.get_or_allocate_ports("m", 1).ports == (base, base + 10)
    # Only a policy that turns probing off says so in the file; the default keeps old ledgers' bytes.
    assert '"probe": false' in (tmp_path / "b.json").read_text()
    assert "probe" not in (tmp_path / "a.json").read_text()


def test_every_pair_busy_is_no_free_pair_naming_the_machine(base: int, ledger_path: Path) -> None:
    tiny = PortPolicy(backend_start=base, frontend_start=base + 2, step=1, max_port=base + 3)  # 2 pairs
    service = PortAllocationService(ledger_path, policy=tiny)
    with held(base), held(base + 3), pytest.raises(NoFreePair, match="2 of its ports are in use"):
        service.get_or_allocate_ports("m", 1)
    assert not ledger_path.exists()


@pytest.mark.skipif(probe.ephemeral_range() is None, reason="the OS does not publish an ephemeral range")
def test_ports_in_the_ephemeral_range_are_never_handed_out_and_overlap_warns(
    ledger_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    low, high = probe.ephemeral_range()  # type: ignore[misc]
    if high + 20 > 65535:
        pytest.skip("the ephemeral range reaches the top of the port space")
    # Pairs 0 and 1 lie below the range; pair 2's backend is its first port.
    policy = PortPolicy(backend_start=low - 2, frontend_start=high + 1, step=1, max_port=high + 20)
    if not all(probe.is_free(port) for port in (low - 2, low - 1, high + 1, high + 2)):
        pytest.skip("something on this machine uses the ports around the ephemeral range")
    service = PortAllocationService(ledger_path, policy=policy)
    with caplog.at_level(logging.WARNING, logger="portalloc"):
        first = service.allocate_many([("m", 1), ("m", 2)])
    assert [a.ports for a in first] == [(low - 2, high + 1), (low - 1, high + 2)]
    assert f"overlaps the OS ephemeral port range {low}-{high}" in caplog.text
    with pytest.raises(NoFreePair, match="ephemeral range"):
        service.allocate_many([("m", 3), ("m", 4)])


# --- status, check --live, get ------------------------------------------------------------


def test_status_reports_a_listening_stranger(base: int, ledger_path: Path, run_cli: RunCli) -> None:
    PortAllocationService(ledger_path, policy=block_policy(base)).get_or_allocate_ports("m", 1)
    idle = run_cli("status")
    assert idle.exit_code == 0
    assert f"{base} free" in idle.stdout and "0 problems" in idle.stdout
    with held(base):
        busy = run_cli("status")
        data = json.loads(run_cli("status", "--json").stdout)
    assert busy.exit_code == 0
    if IS_LINUX:
        assert f"{base} HELD by " in busy.stdout and f"(pid {os.getpid()})" in busy.stdout
    assert f"port {base} (backend of m/1) is held by" in busy.stdout
    (row,) = data["allocations"]
    assert (row["model"], row["app_num"], row["backend"], row["frontend"]) == ("m", 1, base, base + 10)
    assert row["live"]["backend"]["state"] == "listening" and row["live"]["backend"]["held"] is True
    assert row["live"]["frontend"] == {"state": "free", "own": False, "held": False, "holders": []}
    assert [(f["port"], f["role"]) for f in data["findings"]] == [(base, "backend")]


def test_check_live_fails_while_a_port_is_held(base: int, ledger_path: Path, run_cli: RunCli) -> None:
    PortAllocationService(ledger_path, policy=block_policy(base)).get_or_allocate_ports("m", 1)
    assert run_cli("check", "--live").exit_code == 0
    with held(base + 10):
        result = run_cli("check", "--live")
        plain = run_cli("check")
    assert result.exit_code == 1
    assert f"live: port {base + 10} (frontend of m/1) is held by" in result.stdout
    assert plain.exit_code == 0  # without --live the machine is not looked at


def test_get_of_an_existing_key_warns_when_a_stranger_holds_its_port(
    base: int, ledger_path: Path, run_cli: RunCli
) -> None:
    PortAllocationService(ledger_path, policy=block_policy(base)).get_or_allocate_ports("m", 1)
    with held(base):
        warned = run_cli("get", "m", "1")
        quiet = run_cli("--no-probe", "get", "m", "1")
    assert warned.exit_code == 0
    assert warned.stdout == quiet.stdout == f"m/1: backend {base}, frontend {base + 10}\n"
    assert warned.stderr.startswith(f"Warning: port {base} (backend of m/1) is held by")
    assert quiet.stderr == ""
    assert run_cli("get", "m", "1").stderr == ""


def _start_server(args: list[str], cwd: Path, ledger_path: Path, **env: str) -> subprocess.Popen[str]:
    """A real server child; returns once it prints that it listens."""
    server = (
        "import os, socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
        "print('listening', flush=True); time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [*args, sys.executable, "-c", server, env.pop("PORT_ARG")],
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(PORTALLOC_LEDGER=str(ledger_path), **env),
    )
    assert process.stdout is not None and process.stdout.readline() == "listening\n"
    return process


@pytest.mark.skipif(not IS_LINUX, reason="recognising the app reads /proc/<pid>/environ and cwd")
def test_an_app_started_by_portalloc_run_is_its_own_not_held(base: int, ledger_path: Path, run_cli: RunCli) -> None:
    PortAllocationService(ledger_path, policy=block_policy(base)).get_or_allocate_ports("m", 1)
    # The child gets BACKEND_PORT in its environment; the literal port is its argument here.
    server = _start_server(
        [portalloc_script(), "run", "m", "1", "--"], ledger_path.parent, ledger_path, PORT_ARG=str(base)
    )
    try:
        status = run_cli("status", "--json")
        check = run_cli("check", "--live")
    finally:
        server.terminate()
        server.wait()
    backend = json.loads(status.stdout)["allocations"][0]["live"]["backend"]
    assert backend["state"] == "listening" and backend["own"] is True and backend["held"] is False
    assert [h["pid"] for h in backend["holders"]] == [server.pid]  # exec: portalloc's pid is the app's
    assert check.exit_code == 0, check.stdout


@pytest.mark.skipif(not IS_LINUX, reason="recognising the app reads /proc/<pid>/environ and cwd")
def test_an_app_in_a_directory_with_its_dotenv_block_is_its_own(base: int, tmp_path: Path, run_cli: RunCli) -> None:
    ledger_path = tmp_path / "portalloc.json"
    PortAllocationService(ledger_path, policy=block_policy(base)).get_or_allocate_ports("m", 1)
    app = tmp_path / "app"
    app.mkdir()
    assert run_cli("dotenv", "m", "1", str(app / ".env")).exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    for cwd, own in ((app, True), (other, False)):
        server = _start_server([], cwd, ledger_path, PORT_ARG=str(base))
        try:
            (report, _) = PortAllocationService(ledger_path).live_status()[0].ports
        finally:
            server.terminate()
            server.wait()
        assert (report.own, report.held) == (own, not own)


@pytest.mark.skipif(not IS_LINUX, reason="recognising the app reads /proc/<pid>/cwd")
def test_a_fifo_dotenv_in_a_listeners_directory_is_not_read(base: int, tmp_path: Path) -> None:
    # Any process may listen on a ledger port, in any directory: a FIFO .env there must not
    # block `status` (a plain read waits for a writer forever). The timeout only keeps a
    # hang from stalling the suite; the answer is immediate.
    ledger_path = tmp_path / "portalloc.json"
    PortAllocationService(ledger_path, policy=block_policy(base)).get_or_allocate_ports("m", 1)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    os.mkfifo(stranger / ".env")
    server = _start_server([], stranger, ledger_path, PORT_ARG=str(base))
    try:
        status = subprocess.run(
            [sys.executable, "-m", "portalloc", "--ledger", str(ledger_path), "status", "--json"],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait()
    assert status.returncode == 0, status.stderr
    backend = json.loads(status.stdout)["allocations"][0]["live"]["backend"]
    assert backend["state"] == "listening" and backend["own"] is False and backend["held"] is True
