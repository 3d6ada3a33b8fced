"""Running the API: the listening socket, the token file, uvicorn, its limits, and a graceful stop.

The socket is bound here, before uvicorn starts, so the address printed is the one
served (``--port 0`` picks a free port) and a unix socket is mode 0600 from the moment
it exists (uvicorn's own ``--uds`` makes it 0666). uvicorn runs with the connection
guard (``connections.py``), the body limit (``bodylimit.py``) and a log that repeats
cannot flood (``quietlog.py``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import resource
import secrets
import signal
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from portalloc.errors import PortallocError
from portalloc.server import quietlog
from portalloc.server.app import create_app
from portalloc.server.connections import ConnectionGuard
from portalloc.server.limits import ServerLimits
from portalloc.service.facade import PortAllocationService
from portalloc.storage.files import read_regular_file

#: A token file holds one line; anything bigger is not one.
MAX_TOKEN_BYTES = 4096
#: Seconds an in-flight request may take to finish after SIGTERM before it is cut off.
GRACEFUL_SECONDS = 10
#: Seconds an idle keep-alive connection stays open (uvicorn's timer; a new request cancels it).
KEEP_ALIVE_SECONDS = 5
#: File descriptors kept for everything but connections (the ledger, its lock, probes, threads' files).
RESERVED_FDS = 64
#: Connections waiting to be accepted, and accepted at once in one turn of the event loop.
#: asyncio admits a connection (``connection_made``) two turns after accepting it and closes
#: an evicted one a turn later, so up to ``ROOM_FOR_BURSTS`` descriptors are open beyond the cap.
BACKLOG = 64
ROOM_FOR_BURSTS = 4 * BACKLOG


def default_token_file() -> Path:
    """``$XDG_CONFIG_HOME/portalloc/token`` (``~/.config/portalloc/token``): outside any repository.

    A user with neither (no ``$HOME``, no home in the password database: a service
    account) must name the file: ``PortallocError``.
    """
    base = os.environ.get("XDG_CONFIG_HOME")
    if not base:
        try:
            base = str(Path.home() / ".config")
        except RuntimeError:  # pathlib's "Could not determine home directory"
            raise PortallocError(
                "this user has no home directory (and no XDG_CONFIG_HOME) for the default token file; "
                "name one with --token-file"
            ) from None
    return Path(base) / "portalloc" / "token"


def load_or_create_token(path: Path) -> str:
    """The token in ``path``, created there (mode 0600, 256 random bits) if the file does not exist.

    A token file others may read is refused: the token is the key to every write. So is
    one owned by another user, even at mode 0600: whoever wrote it (in a shared
    directory, say) would know the token and could change the ledger through this server.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError:
        pass
    except OSError as error:
        raise PortallocError(f"cannot create the token file {path}: {error.strerror}") from None
    else:
        token = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as file:
            file.write(token + "\n")
        return token
    try:
        data, info = read_regular_file(path, "token file", MAX_TOKEN_BYTES)
    except OSError as error:
        raise PortallocError(f"cannot read the token file {path}: {error.strerror}") from None
    if info.st_uid != os.geteuid():
        raise PortallocError(
            f"the token file {path} is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}); "
            "whoever owns it knows the token: use a token file of your own"
        )
    if info.st_mode & 0o077:
        raise PortallocError(
            f"the token file {path} may be read by others (mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it"
        )
    token = data.decode("ascii", errors="replace").strip()
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise PortallocError(f"the token file {path} must hold one line of printable ASCII without spaces")
    return token


def is_loopback(host: str) -> bool:
    """``True`` for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tcp_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not socket.create_server's 0: asyncio turns Nagle's algorithm off
    # only on sockets that say they are TCP, and with it on every keep-alive response
    # waits ~40 ms for a delayed ACK (measured: 44 ms a request instead of 2).
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(BACKLOG)
    except OSError as error:
        listener.close()
        raise PortallocError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return listener


def unix_socket(path: Path) -> socket.socket:
    """A listening unix socket at ``path``, mode 0600; a stale socket left by a dead server is replaced."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(info.st_mode):
            raise PortallocError(f"{path} exists and is not a socket; refusing to replace it")
        with socket.socket(socket.AF_UNIX) as probe, contextlib.suppress(ConnectionRefusedError):
            probe.connect(str(path))
            raise PortallocError(f"another server is listening on {path}")
        path.unlink()
    listener = socket.socket(socket.AF_UNIX)
    old_umask = os.umask(0o177)  # created 0600: no moment when others may connect
    try:
        listener.bind(str(path))
    except OSError as error:
        listener.close()
        raise PortallocError(f"cannot listen on {path}: {error.strerror or error}") from None
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    listener.listen(BACKLOG)
    return listener


class _Server(uvicorn.Server):
    """uvicorn's server, with a stop flag for the event streams and a quiet exit on SIGTERM/SIGINT."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self.stopping = stopping
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving, then announce it: from then on SIGTERM stops the server gracefully."""
        await super().startup(sockets)
        self.announce()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop accepting, let in-flight requests finish, end the event streams; a second SIGINT forces."""
        self.stopping.set()
        # Not uvicorn's own handler: it re-raises the signal after the stop, which would
        # end the process by SIGTERM (or a KeyboardInterrupt traceback) instead of exit 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def connection_budget(wanted: int) -> int:
    """How many connections may be open: ``wanted``, within what the file-descriptor limit leaves.

    The soft limit is raised to the hard one first (often 1,024 of 1,048,576): past it each
    ``accept`` fails, and the event loop logs a traceback per try.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_FDS - ROOM_FOR_BURSTS))


def serve(
    service: PortAllocationService,
    listener: socket.socket,
    token: str | None,
    host: str | None,
    announce: Callable[[], None],
    limits: ServerLimits,
) -> None:
    """Serve the API on ``listener`` until SIGTERM or SIGINT, within ``limits``.

    ``host`` is a non-loopback name allowed in ``Host``; ``announce`` is called once
    the server answers and its signal handlers are in place.
    """
    stopping = threading.Event()
    budget = connection_budget(limits.max_connections)
    app = create_app(
        service, token=token, extra_hosts=[host] if host else [], stopping=stopping, max_streams=limits.max_streams
    )
    config = uvicorn.Config(
        app,
        # uvicorn calls it as it would a protocol class (config=, server_state=, app_state=, _loop=).
        http=ConnectionGuard(limits._replace(max_connections=budget)).protocol,  # type: ignore[arg-type]
        backlog=BACKLOG,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        server_header=False,
    )
    if budget < limits.max_connections:
        logging.getLogger("uvicorn.error").warning(
            "at most %d connections, not %d: the file-descriptor limit is %d (ulimit -n)",
            budget,
            limits.max_connections,
            resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        )
    repeat = quietlog.install()  # after uvicorn.Config, which configures uvicorn's loggers
    try:
        _Server(config, stopping, announce).run(sockets=[listener])
    finally:
        quietlog.uninstall(repeat)  # what was left out is counted in the log's last lines
