"""The application factory: ``create_app(service, token=…)`` builds the HTTP API over one service."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from fastapi import FastAPI

from portalloc import __version__
from portalloc.server.bodylimit import BodyLimit
from portalloc.server.errors import ERROR_RESPONSES, install_error_handlers
from portalloc.server.limits import ServerLimits
from portalloc.server.policy import AccessPolicy, RequestPolicy
from portalloc.server.routes import allocations, events, health, reports
from portalloc.server.state import ServerState
from portalloc.service.facade import PortAllocationService


def create_app(
    service: PortAllocationService,
    *,
    token: str | None,
    extra_hosts: Iterable[str] = (),
    stopping: threading.Event | None = None,
    max_streams: int = ServerLimits().max_streams,
) -> FastAPI:
    """The portalloc HTTP API over ``service``.

    ``token`` is the bearer token every state change must carry (``None``: no token,
    for a private unix socket only). ``extra_hosts`` are host names the ``Host`` header
    may use besides the loopback ones (the ``--host`` address). ``stopping``, once set,
    ends the event streams so the server can stop; at most ``max_streams`` are open at
    once. The OpenAPI document is served at
    ``/openapi.json``; the interactive pages are off (they load scripts from a CDN).
    """
    app = FastAPI(
        title="portalloc",
        version=__version__,
        summary="One backend/frontend port pair per (model, app), kept in a JSON ledger.",
        docs_url=None,
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    app.state.portalloc = ServerState(service, stopping or threading.Event(), max_streams)
    for module in (allocations, reports, events, health):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(RequestPolicy, policy=AccessPolicy(token, extra_hosts))
    app.add_middleware(BodyLimit)  # outermost: it counts what the policy's Content-Length check cannot
    return app
