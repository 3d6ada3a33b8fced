"""What this machine's OS says about a port: free, listening, reserved, or blocked, and by whom.

A port is tested the way a server would take it: ``bind`` on 127.0.0.1, ::1, 0.0.0.0
and ``::``. The details matter:

* IPv4 and IPv6 are separate port spaces (a dev server on ``::1`` only does not block
  127.0.0.1), so both are tested, and the IPv6 sockets set ``IPV6_V6ONLY`` so that each
  test asks about one family.
* On Linux the two wildcard binds are the whole test: the kernel refuses a wildcard bind
  while any address of its family holds the port (a listener, a bound socket, a
  connection in TIME_WAIT), unless both sockets asked to share it, and the test socket
  never does; so the loopback binds could only repeat their answer (a new allocation
  pays for every bind twice, 1,000 new keys for 8,000). macOS and Windows let a wildcard
  and a specific bind share a port, so there all four are tested.
* No ``SO_REUSEADDR``: with it, macOS and Windows let the test bind a port that a
  server is listening on and report it free.
* A machine without IPv6 (``EADDRNOTAVAIL``, ``EAFNOSUPPORT``) has nothing to hold there:
  that is not "busy". ``EACCES`` means the OS reserves the port.
* A failed bind is not always a live server: a port in TIME_WAIT (a connection closed
  a moment ago) or bound without ``listen`` fails too. A port counts as listening only
  if a connection to 127.0.0.1 or ::1 is accepted; otherwise it is skipped for new
  allocations but not reported as held. (Connecting costs microseconds; reading
  ``/proc/net/tcp`` walks the kernel's whole connection table, which takes
  milliseconds on a large machine.)

Who holds a listening port comes from ``/proc/net/tcp{,6}`` and ``/proc/<pid>/fd``
(socket inode → process), read only when some port is listening, best effort: a
process the user may not inspect is simply not named. Nothing here needs root.

This module is free of pydantic, so the command line's ``get`` fast path can use it.
"""

from __future__ import annotations

# ``_socket`` is the C module under ``socket``. Bind tests, connection attempts and
# netlink need nothing else, and importing ``socket`` itself (its enum conversions)
# costs about 2 ms, which would be most of what ``portalloc get`` of an existing key
# spends on probing.
import _socket
import errno
import os
import sys
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import NamedTuple

#: Where Linux keeps the range it picks outgoing connections' local ports from.
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
RESERVED_PORTS_FILE = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")
_PROC = Path("/proc")
_TCP_TABLES = (_PROC / "net" / "tcp", _PROC / "net" / "tcp6")
_TCP_LISTEN = "0A"

_WILDCARD_TESTS = ((_socket.AF_INET, "0.0.0.0"), (_socket.AF_INET6, "::"))
_BIND_TESTS = (
    _WILDCARD_TESTS
    if sys.platform.startswith("linux")
    else ((_socket.AF_INET, "127.0.0.1"), (_socket.AF_INET6, "::1"), *_WILDCARD_TESTS)
)
#: The machine has no such address or family (no IPv6): nothing can hold the port there.
_NO_SUCH_ADDRESS = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT})
_CONNECT_TIMEOUT = 0.5


class PortState(str, Enum):
    """What the OS says about one port."""

    #: Every bind the machine supports succeeded.
    FREE = "free"
    #: Something is listening on it.
    LISTENING = "listening"
    #: A bind failed but nothing listens: TIME_WAIT, or bound without ``listen``.
    BLOCKED = "blocked"
    #: The OS refuses the bind (``EACCES``): privileged or excluded port.
    RESERVED = "reserved"


class ListeningProcess(NamedTuple):
    """A process holding a listening socket."""

    pid: int
    name: str

    def describe(self) -> str:
        """``python3 (pid 4242)``."""
        return f"{self.name} (pid {self.pid})"


def bind_error(port: int) -> int | None:
    """The ``errno`` of the first test bind that fails on ``port``, or ``None`` if it is free."""
    for family, address in _BIND_TESTS:
        error = _bind_test(family, address, port)
        if error is not None:
            return error
    return None


def _bind_test(family: int, address: str, port: int) -> int | None:
    try:
        sock = _socket.socket(family, _socket.SOCK_STREAM)
    except OSError as error:
        if error.errno in _NO_SUCH_ADDRESS:
            return None
        raise
    try:
        if family == _socket.AF_INET6:
            sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
    except OSError as error:
        if error.errno in _NO_SUCH_ADDRESS:
            return None
        return error.errno if error.errno is not None else errno.EADDRINUSE
    finally:
        sock.close()
    return None


def is_free(port: int) -> bool:
    """Whether a server could take ``port`` now on every local address (the test for new allocations)."""
    return bind_error(port) is None


def port_state(port: int) -> PortState:
    """The state of ``port``: the bind tests, then, if they fail, a connection attempt on both loopbacks."""
    error = bind_error(port)
    if error is None:
        return PortState.FREE
    if error == errno.EACCES:
        return PortState.RESERVED
    return PortState.LISTENING if accepts_connections(port) else PortState.BLOCKED


def accepts_connections(port: int) -> bool:
    """Whether something accepts a TCP connection on 127.0.0.1 or ::1 at ``port``."""
    for family, address in ((_socket.AF_INET, "127.0.0.1"), (_socket.AF_INET6, "::1")):
        try:
            sock = _socket.socket(family, _socket.SOCK_STREAM)
        except OSError:
            continue
        try:
            sock.settimeout(_CONNECT_TIMEOUT)
            sock.connect((address, port))
            return True
        except TimeoutError:
            return True  # a full backlog is still a listener
        except OSError:
            continue
        finally:
            sock.close()
    return False


def listening_sockets() -> dict[int, frozenset[int]] | None:
    """``{port: socket inodes}`` of the TCP sockets listening now, or ``None`` where the OS does not say (not Linux).

    Asks the kernel over netlink (``sock_diag``, what ``ss`` uses) for listening sockets
    only, which walks just the listening table; ``/proc/net/tcp{,6}`` walks every
    connection's hash bucket and takes milliseconds on a large machine, so it is only
    the fallback.
    """
    found: dict[int, set[int]] | None
    try:
        found = _listening_via_netlink()
    except (OSError, AttributeError):  # not Linux (no AF_NETLINK), or netlink forbidden (some sandboxes)
        found = _listening_via_proc()
    return None if found is None else {port: frozenset(inodes) for port, inodes in found.items()}


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCPF_LISTEN = 1 << 10


def _listening_via_netlink() -> dict[int, set[int]]:
    import struct

    found: dict[int, set[int]] = {}
    sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, _NETLINK_SOCK_DIAG)
    try:
        for seq, family in enumerate((_socket.AF_INET, _socket.AF_INET6), start=1):
            # nlmsghdr, then inet_diag_req_v2: family, protocol, ext, pad, states, and a zero sockid.
            request = struct.pack("=BBBBI48x", family, _socket.IPPROTO_TCP, 0, 0, _TCPF_LISTEN)
            sock.send(
                struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, seq, 0) + request
            )
            done = False
            while not done:
                data = sock.recv(65536)
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    if kind == _NLMSG_DONE:
                        done = True
                        break
                    if kind == _NLMSG_ERROR or length < 16:
                        raise OSError(errno.EPROTO, "sock_diag refused the request")
                    # inet_diag_msg: family, state, timer, retrans, then sockid (source port first, big-endian) …
                    (port,) = struct.unpack_from("!H", data, offset + 16 + 4)
                    # … expires, rqueue, wqueue, uid, inode at 52..72.
                    (inode,) = struct.unpack_from("=I", data, offset + 16 + 68)
                    found.setdefault(port, set()).add(inode)
                    offset += (length + 3) & ~3
    finally:
        sock.close()
    return found


def _listening_via_proc() -> dict[int, set[int]] | None:
    found: dict[int, set[int]] = {}
    read_any = False
    for table in _TCP_TABLES:
        try:
            lines = table.read_text(encoding="ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        read_any = True
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if len(fields) < 10 or fields[3] != _TCP_LISTEN:
                continue
            try:
                port = int(fields[1].rsplit(":", 1)[1], 16)
                inode = int(fields[9])
            except (IndexError, ValueError):
                continue
            found.setdefault(port, set()).add(inode)
    return found if read_any else None


def holders(inodes: Iterable[int]) -> dict[int, list[ListeningProcess]]:
    """``{inode: processes with that socket open}`` for the processes this user may inspect.

    Best effort: ``/proc/<pid>/fd`` of another user's process is unreadable without
    root, and such a process is just not listed.
    """
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    found: dict[int, list[ListeningProcess]] = {}
    if not wanted:
        return found
    try:
        pids = [int(entry) for entry in os.listdir(_PROC) if entry.isdigit()]
    except OSError:
        return found
    for pid in sorted(pids):
        fd_dir = _PROC / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        matched: set[int] = set()
        for fd in fds:
            try:
                inode = wanted.get(os.readlink(fd_dir / fd))
            except OSError:
                continue
            if inode is not None:
                matched.add(inode)
        if matched:
            holder = ListeningProcess(pid, process_name(pid))
            for inode in matched:
                found.setdefault(inode, []).append(holder)
    return found


def process_name(pid: int) -> str:
    """The short command name of ``pid`` (``/proc/<pid>/comm``), or ``"?"``."""
    try:
        return (_PROC / str(pid) / "comm").read_text(encoding="utf-8", errors="replace").strip() or "?"
    except OSError:
        return "?"


def process_environment(pid: int) -> dict[str, str] | None:
    """The environment ``pid`` was started with, or ``None`` if this user may not read it."""
    try:
        data = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    environment: dict[str, str] = {}
    for entry in data.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep:
            environment[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return environment


def process_cwd(pid: int) -> Path | None:
    """The working directory of ``pid``, or ``None`` if this user may not see it."""
    try:
        return Path(os.readlink(_PROC / str(pid) / "cwd"))
    except OSError:
        return None


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int] | None:
    """``(low, high)`` of the OS's ephemeral port range, or ``None`` where the OS does not say (not Linux)."""
    try:
        low, high = (int(part) for part in _read_setting(path).split())
    except (OSError, ValueError):
        return None
    return (low, high) if low <= high else None


def os_reserved_ports(path: Path | None = None) -> frozenset[int]:
    """Ports the OS keeps out of its ephemeral range (Linux ``ip_local_reserved_ports``: ``8080,9000-9010``).

    ``path`` defaults to ``RESERVED_PORTS_FILE``. Empty where the OS does not say (not
    Linux) or the file is not in that format.
    """
    try:
        text = _read_setting(path or RESERVED_PORTS_FILE).strip()
    except OSError:
        return frozenset()
    ports: set[int] = set()
    for item in filter(None, text.split(",")):
        low, _, high = item.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            return frozenset()
        ports.update(range(first, last + 1))
    return frozenset(ports)


def _read_setting(path: Path) -> str:
    """The text of a small settings file (``/proc/sys``) by plain reads: every new allocation reads two, and
    ``Path.read_text``'s buffered text layers cost three times the read itself."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")  # a byte that is not ASCII fails the parse, as a bad value
