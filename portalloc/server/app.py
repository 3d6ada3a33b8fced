"""The application factory: ``create_app(service, token=…)`` builds the HTTP API over one service."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.routing import Route

from portalloc import __version__
from portalloc.server import page
from portalloc.server.errors import ERROR_STATUSES, install_error_handlers
from portalloc.server.journal import EventJournal
from portalloc.server.openapi import install_document
from portalloc.server.openmetrics import MeasureRequests, RequestMetrics
from portalloc.server.policy import AccessPolicy, RequestPolicy
from portalloc.server.problems import Problem
from portalloc.server.routes import allocations, events, health, reports
from portalloc.server.state import ServerState
from portalloc.service.facade import PortAllocationService


def create_app(
    service: PortAllocationService,
    *,
    token: str | None,
    extra_hosts: Iterable[str] = (),
    stopping: threading.Event | None = None,
) -> FastAPI:
    """The portalloc HTTP API over ``service``.

    ``token`` is the bearer token every state change must carry (``None``: no token,
    for a private unix socket only). ``extra_hosts`` are host names the ``Host`` header
    may use besides the loopback ones (the ``--host`` address). ``stopping``, once set,
    ends the event streams so the server can stop. The OpenAPI document is served at
    ``/openapi.json`` (``portalloc.server.openapi``); the interactive pages are off (they
    load scripts from a CDN).
    """
    app = FastAPI(
        title="portalloc",
        version=__version__,
        summary="One backend/frontend port pair per (model, app), kept in a JSON ledger.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Operation ids are the route functions' names: a generated client gets `put_allocation`.
        generate_unique_id_function=lambda route: route.name,
        responses={status: {"model": Problem, "description": text} for status, text in ERROR_STATUSES.items()},
    )
    app.state.portalloc = ServerState(service, stopping or threading.Event())
    app.state.journal = EventJournal(service.ledger_path)
    app.state.request_metrics = RequestMetrics()
    routers = [module.router for module in (allocations, reports, events, health, page)]
    for router in routers:
        app.include_router(router)
    install_document(app)
    install_error_handlers(app)
    # Every route by itself (an included router is one opaque entry of app.routes): what the policy
    # asks to answer 405 with the path's every method.
    routes = (*app.router.routes, *(route for router in routers for route in router.routes))
    endpoints = [route for route in routes if isinstance(route, Route)]
    app.add_middleware(RequestPolicy, policy=AccessPolicy(token, extra_hosts), routes=endpoints)
    app.add_middleware(MeasureRequests, metrics=app.state.request_metrics)  # outermost: refusals count too
    return app
