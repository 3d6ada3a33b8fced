"""Connections a client cannot hold forever: a deadline for each request, and a cap on connections.

uvicorn has no time limit for receiving a request: a connection that sends half a
request line and stops is kept open for ever, and its keep-alive timer is cancelled by
the first byte. 1,100 such connections held every file descriptor, so each
``accept`` failed and logged a traceback (114 MB in 22 s) and every other client timed
out. uvicorn's ``limit_concurrency`` does not help: it counts these connections and
answers 503 to the next *complete* request once they reach it, so it would turn the
legitimate clients away and keep the attacker's sockets.

``GuardedH11Protocol`` wraps uvicorn's own h11 protocol class (``H11Protocol``, the
one uvicorn runs when ``httptools`` is not installed; the server always uses it) and
adds two rules:

- a deadline (``request_timeout``): from the moment a connection opens, and again
  each time a response ends, the client has that long to send a whole request; a
  connection still without one is closed. An idle keep-alive connection closes sooner,
  by uvicorn's own keep-alive timer (``run.KEEP_ALIVE_SECONDS``);
- a cap (``max_connections``): when a new connection makes one too many, the
  connection that has waited longest for its request is closed (a half-open one, or
  an idle keep-alive one); when every connection is busy answering, the new one is.
  So a client that sends its request at once is served even while the cap is full of
  connections that send nothing.

Every closing is counted by one log line per kind (``quietlog.py`` keeps it bounded).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from portalloc.server.limits import ServerLimits

logger = logging.getLogger("uvicorn.error")


class ConnectionGuard:
    """What the connections of one server share: the limits and who is waiting for a request, oldest first."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        #: Connections whose request has not fully arrived, in the order their wait began (a dict keeps it).
        self.waiting: dict[GuardedH11Protocol, None] = {}

    def protocol(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> GuardedH11Protocol:
        """A protocol instance for one new connection (uvicorn calls this as its protocol class)."""
        return GuardedH11Protocol(config, server_state, app_state, _loop, guard=self)

    def admit(self, new: GuardedH11Protocol, open_connections: int) -> None:
        """Keep at most ``max_connections`` open: close the longest-waiting connection, else ``new``."""
        if open_connections <= self.limits.max_connections:
            return
        victim = next(iter(self.waiting), new)
        logger.warning(
            "%d connections are open, the most allowed (portalloc serve --max-connections): "
            "closed the one that waited longest for its request",
            self.limits.max_connections,
        )
        victim.close_waiting()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the request deadline and the connection cap of a ``ConnectionGuard``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        guard: ConnectionGuard,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the first request's deadline, then make room under the cap."""
        super().connection_made(transport)
        self._await_request()
        self.guard.admit(self, len(self.connections))

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection's deadline."""
        self._request_arrived()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        """Parse what arrived; once a whole request is in, its deadline is lifted."""
        super().handle_events()
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._request_arrived()

    def on_response_complete(self) -> None:
        """After a response, the next request's deadline starts (unless it is already in, pipelined)."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._await_request()

    def close_waiting(self) -> None:
        """Close this connection, which has no complete request to answer."""
        self._request_arrived()
        if not self.transport.is_closing():
            self.transport.close()

    def _await_request(self) -> None:
        self._request_arrived()
        self.guard.waiting[self] = None
        self._deadline = self.loop.call_later(self.guard.limits.request_timeout, self._too_slow)

    def _request_arrived(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.guard.waiting.pop(self, None)

    def _too_slow(self) -> None:
        logger.warning(
            "closed a connection that sent no complete request within %g s (portalloc serve --request-timeout)",
            self.guard.limits.request_timeout,
        )
        self.close_waiting()
