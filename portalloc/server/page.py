"""``GET /``: one page that lists every allocation with its two ports as links, live.

The page (``page.html``, package data) reads ``/v1/status`` (which ports listen now and
who holds them) and refreshes on each event of ``/v1/events``; it filters by model in
the browser. It loads nothing from elsewhere (the machine may be offline), changes
nothing (only ``GET``), and is served under the same Host and Origin rules as the API;
its ``Content-Security-Policy`` lets it talk only to this server. A client that does
not accept HTML gets 406.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import HTMLResponse, Response

from portalloc.server.problems import Problem, problem_response

router = APIRouter(tags=["page"])
_PAGE = files("portalloc.server").joinpath("page.html")
#: Only this server, nothing inline but the page's own script and style, no framing.
POLICY = (
    "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def accepts_html(accept: str | None) -> bool:
    """Whether an ``Accept`` header admits ``text/html`` (no header admits anything)."""
    if not accept:
        return True
    for item in accept.split(","):
        media, *params = (part.strip().lower() for part in item.split(";"))
        if media in ("text/html", "text/*", "*/*") and "q=0" not in params:
            return True
    return False


@router.get(
    "/",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The page"},
        406: {"model": Problem, "description": "The client does not accept HTML"},
    },
)
def page(accept: Annotated[str | None, Header(include_in_schema=False)] = None) -> Response:
    """The allocations page (HTML)."""
    if not accepts_html(accept):
        return problem_response(406, "not_acceptable", "/ is an HTML page; ask for text/html, or use /v1/status")
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"), headers={"Content-Security-Policy": POLICY})
