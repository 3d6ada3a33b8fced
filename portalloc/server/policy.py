"""Who may ask what: every check a request passes before any route sees it, in one place.

The rules, in the order they are applied (the first that fails answers):

0. The URL's path and query, percent-decoded, must be UTF-8 (400): the server would
   put U+FFFD for each other byte, so ``%FF`` and ``%FE`` would name one model.
1. ``Host`` must name this server: ``127.0.0.1``, ``localhost`` or ``[::1]`` (any port),
   or the address given to ``--host``. A page on ``evil.example`` whose name was
   re-pointed at 127.0.0.1 (DNS rebinding) sends ``Host: evil.example``: 403.
2. ``Origin``, when a browser sends one, must be such a host too: a cross-site
   ``fetch`` or form from another page is refused (403), whatever its method.
3. The method must be one the path has (405 with ``Allow``), whatever the method
   (``TRACE``, ``QUERY``, an invented one): refused as a method, before any token is
   asked for, and never as a server error (5xx).
4. A request that may change state (anything but ``GET`` and ``HEAD``) needs
   ``Authorization: Bearer <token>`` (401), unless the server runs without a token
   (only on a mode-0600 unix socket),
5. and, when it has a body, ``Content-Type: application/json`` (415): a browser can
   send a cross-site ``text/plain`` or form ``POST`` without asking first, never a
   JSON one. A body-less request carries nothing a form could forge, and the
   ``Authorization`` header already forces a CORS preflight, which the server never
   answers: ``curl -X DELETE -H 'Authorization: Bearer …'`` works as is;
6. a body of at most ``MAX_BODY_BYTES`` by its ``Content-Length`` (413),
7. and a body only where the route takes one (400): a ``PUT`` body is refused, not ignored.

``GET`` never changes state (the routes keep that promise), so rules 4 to 7 guard
every write. The policy is a pure ASGI middleware: it refuses before FastAPI parses
anything, for every path (404s and the OpenAPI document included), and answers
``HEAD`` wherever ``GET`` is answered.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import NamedTuple
from urllib.parse import unquote_to_bytes, urlsplit

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from portalloc.server.methods import RouteFit, answer_head, route_fit
from portalloc.server.problems import problem_response

#: The names a loopback client may use for this server.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Methods that never change state.
SAFE_METHODS = frozenset({"GET", "HEAD"})
#: The largest request body accepted (a batch of 10,000 long keys fits).
MAX_BODY_BYTES = 4 * 1024 * 1024


class Refusal(NamedTuple):
    """Why a request is refused: status, stable code, one-line message, extra headers."""

    status: int
    code: str
    message: str
    #: Extra response headers (``WWW-Authenticate`` for a 401).
    headers: tuple[tuple[str, str], ...] = ()


def host_name(value: str) -> str:
    """The host part of a ``Host`` header value, lower-cased, without port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, colon, port = value.rpartition(":")
    return name if colon and port.isdigit() else value


def url_refusal(raw_path: bytes, query: bytes) -> Refusal | None:
    """The 400 for a URL whose path or query is not UTF-8 once percent-decoded, else ``None``."""
    for part, what in ((raw_path, "path"), (query.replace(b"+", b" "), "query")):
        try:
            unquote_to_bytes(part).decode("utf-8")
        except UnicodeDecodeError as error:
            return Refusal(
                400,
                "invalid_url",
                f"the URL's {what} is not UTF-8 once percent-decoded (byte {error.start + 1}); "
                "model names are UTF-8 text: percent-encode their UTF-8 bytes",
            )
    return None


class AccessPolicy:
    """The rules above for one server: the host names it answers to and its token (``None``: no token)."""

    def __init__(self, token: str | None, extra_hosts: Iterable[str] = ()) -> None:
        self.token = token
        self.hosts = LOOPBACK_HOSTS | {host_name(host) for host in extra_hosts}

    def check(self, method: str, headers: dict[str, str], fit: RouteFit | None = None) -> Refusal | None:
        """The refusal for a request with this method and these (lower-case) headers, or ``None``.

        ``fit`` is what the routes of the request's path accept (``None``: no route, a 404 later).
        """
        host = headers.get("host")
        if host is None or host_name(host) not in self.hosts:
            return Refusal(
                403,
                "forbidden_host",
                f"the Host header {host!r} does not name this server (allowed: {self.allowed()}); "
                "refused as a possible DNS-rebinding attack",
            )
        origin = headers.get("origin")
        if origin is not None and not self._same_site(origin):
            return Refusal(403, "forbidden_origin", f"requests from the origin {origin!r} are refused (cross-site)")
        refusal = _method_refusal(method, fit)
        if refusal is not None or method in SAFE_METHODS:
            return refusal
        if self.token is not None:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not given:
                return Refusal(
                    401,
                    "unauthorized",
                    "this request changes the ledger and needs 'Authorization: Bearer <token>' "
                    "(portalloc serve prints where the token file is)",
                    (("WWW-Authenticate", "Bearer"),),
                )
            if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                return Refusal(401, "unauthorized", "the bearer token is wrong", (("WWW-Authenticate", "Bearer"),))
        return _body_refusal(method, headers, fit)

    def allowed(self) -> str:
        """The accepted host names, for messages."""
        return ", ".join(f"[{h}]" if ":" in h else h for h in sorted(self.hosts))

    def _same_site(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin)
            return parts.scheme in ("http", "https") and (parts.hostname or "") in self.hosts
        except ValueError:  # "http://[::1" and the like
            return False


def _method_refusal(method: str, fit: RouteFit | None) -> Refusal | None:
    if fit is None or method in fit.allowed:
        return None
    allowed = ", ".join(sorted(fit.allowed))
    return Refusal(405, "method_not_allowed", f"this path takes {allowed}, not {method}", (("Allow", allowed),))


def has_body(headers: dict[str, str]) -> bool:
    """Whether a request with these (lower-case) headers carries a body (RFC 9112 §6.3)."""
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


def _body_refusal(method: str, headers: dict[str, str], fit: RouteFit | None) -> Refusal | None:
    if not has_body(headers):
        return None
    content_type = headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        return Refusal(
            415,
            "unsupported_media_type",
            f"a request body must be Content-Type: application/json, not {content_type!r}",
        )
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return Refusal(413, "body_too_large", f"the request body is {length} bytes; the limit is {MAX_BODY_BYTES:,}")
    if fit is not None and not fit.takes_body:
        return Refusal(400, "unexpected_body", f"{method} on this path takes no request body; send none")
    return None


class RequestPolicy:
    """ASGI middleware applying an ``AccessPolicy`` to every HTTP request."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.policy = policy
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a refused request with its error; pass every other one on unchanged."""
        if scope["type"] == "http":
            # A header sent twice keeps its first value: a second Host cannot override the checked one.
            headers: dict[str, str] = {}
            for name, value in scope["headers"]:
                headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
            refusal = url_refusal(scope.get("raw_path") or scope["path"].encode(), scope.get("query_string", b""))
            fit = route_fit(self.routes, scope)
            refusal = refusal or self.policy.check(scope["method"], headers, fit)
            if refusal is not None:
                response = problem_response(
                    refusal.status, refusal.code, refusal.message, dict(refusal.headers), scope["path"]
                )
                await response(scope, receive, send)
                return
            if scope["method"] == "HEAD" and fit is not None:
                await answer_head(self.app, scope, receive, send)
                return
        await self.app(scope, receive, send)
