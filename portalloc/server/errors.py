"""How a failure becomes an HTTP response: a status, and a problem (``portalloc.server.problems``).

The ``code`` of a ``PortallocError`` is its class attribute (``portalloc.errors``), and
the detail is the line the CLI prints after ``Error:``. Statuses: 4xx for the client's
mistakes (400 for JSON that does not parse, 422 for JSON that does but does not fit
the schema, 412 for a failed ``If-Match`` / ``If-None-Match``), 409 when the ledger's
state refuses the request (a full policy, a corrupt or conflicted ledger), 503 with
``Retry-After`` when the ledger is locked or cannot be reached. No input gets a 500.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from portalloc.errors import (
    InvalidKey,
    LedgerLocked,
    LedgerMissing,
    LedgerUnavailable,
    PortallocError,
    PreconditionFailed,
)
from portalloc.server.problems import problem_response

#: The status of each kind of error (the nearest class in its MRO wins); anything else is 409.
STATUS: dict[type[PortallocError], int] = {
    InvalidKey: 400,
    PreconditionFailed: 412,
    LedgerLocked: 503,
    LedgerUnavailable: 503,
    # No ledger where a write needs one: retrying cannot help until someone runs `portalloc init`.
    LedgerMissing: 409,
}
#: Seconds a client should wait before retrying a 503 (a write holds the lock about a millisecond).
RETRY_AFTER = "1"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def status_of(error: PortallocError) -> int:
    """The HTTP status of a ``PortallocError``."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 409


def _portalloc_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PortallocError)
    status = status_of(error)
    retry = {"Retry-After": RETRY_AFTER} if status == 503 else None
    return problem_response(status, error.code, str(error), retry, request.url.path)


def _os_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OSError)
    where = f": {error.filename}" if error.filename else ""
    detail = f"{error.strerror or error}{where}"
    return problem_response(503, "os_error", detail, {"Retry-After": RETRY_AFTER}, request.url.path)


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        # A syntax error is the client's malformed request (400), not content that fails the schema (422).
        position = first.get("loc", ("body", 0))[-1]
        reason = first.get("ctx", {}).get("error", "invalid JSON")
        detail = f"the request body is not valid JSON: {reason} at character {position}"
        return problem_response(400, "malformed_json", detail, instance=request.url.path)
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return problem_response(422, "invalid_request", f"{where}: {message}{suffix}", instance=request.url.path)


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    return problem_response(error.status_code, code, str(error.detail), dict(error.headers or {}), request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure the app can meet answer as a problem."""
    app.add_exception_handler(PortallocError, _portalloc_error)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


#: The error responses every route documents (the OpenAPI document is the contract schemathesis checks).
ERROR_STATUSES: dict[int, str] = {
    400: "An invalid model name or app number; a body that is not JSON, or that the route does not take",
    401: "A state change without the right bearer token",
    403: "A foreign Host or Origin",
    409: "The ledger refuses: full policy, corrupt or conflicted ledger",
    413: "Request body too large",
    415: "A request body that is not Content-Type: application/json",
    422: "A body that does not match the schema",
    503: "The ledger is locked or unreachable; see Retry-After",
}
