"""Which methods a path has, whether its route takes a body, and ``HEAD`` as ``GET`` without the body.

FastAPI registers one route per method, so Starlette's own 405 names only the first
route that matched the path (``PATCH`` on a key answered ``Allow: GET``); here every
route that matches the path is asked. ``HEAD`` is answered wherever ``GET`` is
(RFC 9110 §9.3.2): the ``GET`` route runs and its body is dropped, so the headers are
the ones a ``GET`` gets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import NamedTuple

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RouteFit(NamedTuple):
    """What the routes of one path accept: the methods (for ``Allow``), and whether the asked method takes a body."""

    allowed: frozenset[str]
    takes_body: bool


def route_fit(routes: Sequence[BaseRoute], scope: Scope) -> RouteFit | None:
    """What the routes of ``scope``'s path accept (``None``: no route has that path)."""
    method = "GET" if scope["method"] == "HEAD" else scope["method"]
    probe = {**scope, "method": method}
    allowed: set[str] = set()
    takes_body = False
    for route in routes:
        match, _ = route.matches(probe)
        if match is Match.NONE:
            continue
        methods = getattr(route, "methods", None) or set()
        allowed |= methods
        if method in methods:
            takes_body = getattr(route, "body_field", None) is not None
    if not allowed:
        return None
    if "GET" in allowed:
        allowed.add("HEAD")
    return RouteFit(frozenset(allowed), takes_body)


class _HeadFinished(Exception):
    """Raised into a streaming ``GET`` route once its ``HEAD`` answer is complete, to end it."""


async def answer_head(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` for a ``HEAD`` request as ``GET`` and send only the status and headers."""
    finished = False
    as_get = {**scope, "method": "GET"}

    async def headers_only(message: Message) -> None:
        nonlocal finished
        if finished:
            # An endless stream (the event stream) would go on; the client has all it asked for.
            raise _HeadFinished
        if message["type"] == "http.response.body":
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if "route" in as_get:  # what the router matched, for those outside who count requests by route
            scope["route"] = as_get["route"]
        await send(message)

    with contextlib.suppress(_HeadFinished):
        await app(as_get, receive, headers_only)
