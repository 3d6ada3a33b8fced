"""Every error the server answers, as an RFC 9457 problem: ``application/problem+json``.

``{"type", "title", "status", "detail", "code", "instance"}``: ``detail`` is the line the
CLI prints after ``Error:`` and ``code`` the stable name of the error (the ``code`` of a
``PortallocError``, or one of the server's own refusals such as ``unauthorized``).
``type`` is ``about:blank``, so ``title`` is the status's reason phrase (RFC 9457 §4.2.1);
the ``code`` extension member is what a client branches on.
"""

from __future__ import annotations

from http import HTTPStatus

from pydantic import BaseModel
from starlette.responses import JSONResponse

#: The media type of every error body.
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An error response (RFC 9457) with the stable ``code`` as an extension member."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


def problem_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, instance: str | None = None
) -> JSONResponse:
    """The ``application/problem+json`` response for a failure."""
    problem = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, code=code, instance=instance)
    return JSONResponse(
        problem.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )
