"""What every route shares: the service, the lock that serializes this process's use of it, the stop flag."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from portalloc.service.facade import PortAllocationService

T = TypeVar("T")


@dataclass
class ServerState:
    """The one service of the server and how routes reach it.

    ``PortAllocationService`` keeps a parse cache that is not made for threads, and
    FastAPI runs the routes in a thread pool; every call goes through ``call``, so one
    thread at a time uses the service. Other processes (the CLI) are kept out by the
    ledger's file lock as usual. ``stopping`` is set on SIGTERM/SIGINT, so endless
    event streams end and the server can stop.
    """

    service: PortAllocationService
    stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, function: Callable[[PortAllocationService], T]) -> T:
        """``function(service)`` with this process's lock on the service held."""
        with self._lock:
            return function(self.service)


def server_state(request: Request) -> ServerState:
    """The ``ServerState`` of the app serving ``request``."""
    state: ServerState = request.app.state.portalloc
    return state


#: A route parameter that receives the ``ServerState``.
State = Annotated[ServerState, Depends(server_state)]
