"""``GET /v1/events``: server-sent events, one per change of the ledger file, whoever made it.

The stream watches the file itself (a ``stat`` every ``POLL_SECONDS``; a read only when
its inode, size or times moved), so a change by the CLI, another server or a
``git checkout`` is seen as well as one made through this server. Events:

- ``ready`` once, when the stream starts: ``{"allocations": N}``, with the id of the
  latest change;
- ``change`` for each change seen: ``{"added": [...], "removed": [...], "allocations": N}``
  (allocations as ``{model, app_num, backend, frontend}``); changes closer together than
  the poll interval arrive as one event, and a rewrite that changes no allocation
  (``portalloc fmt``) sends none;
- ``reset`` when a client reconnects with a ``Last-Event-ID`` whose sequel is no longer
  known (older than the journal keeps, or from elsewhere): ``{"allocations": N}``, read
  the state again;
- ``error`` when the ledger cannot be read: ``{"code": …, "message": …}`` (once per
  distinct error, without an id; the stream goes on and reports the next change).

Change ids only grow, across reconnects and server restarts: they come from the
ledger's journal in the machine's state directory (``portalloc.server.journal``), and a
client that reconnects with ``Last-Event-ID`` first gets every change it missed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from portalloc.core.models import Ledger
from portalloc.errors import PortallocError
from portalloc.server.journal import Event, EventJournal
from portalloc.server.state import ServerState, State

router = APIRouter(tags=["events"])
#: How often the stream looks at the file; also how soon it ends after SIGTERM.
POLL_SECONDS = 0.1


@router.get(
    "/v1/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless text/event-stream"}},
)
async def events(
    state: State,
    request: Request,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event (as EventSource does).")
    ] = None,
) -> StreamingResponse:
    """A ``text/event-stream`` of the ledger's changes (see the module's description)."""
    return StreamingResponse(
        _changes(state, request.app.state.journal, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event(name: str, number: int | None, data: dict[str, Any]) -> str:
    # An event without an id (error) leaves the client's last event id where it was.
    line = "" if number is None else f"id: {number}\n"
    return f"{line}event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sent(events: list[Event]) -> str:
    return "".join(_event(event.name, event.id, event.data) for event in events)


async def _read(state: ServerState) -> Ledger:
    # The service's read is a stat when nothing changed; a thread keeps a locked service off the event loop.
    return await anyio.to_thread.run_sync(lambda: state.call(lambda service: service.ledger()))


async def _record(journal: EventJournal, ledger: Ledger, seen: int | None) -> tuple[int, list[Event]]:
    return await anyio.to_thread.run_sync(lambda: journal.record(list(ledger.allocations), seen))


async def _changes(state: ServerState, journal: EventJournal, last_event_id: str | None) -> AsyncIterator[str]:
    last_error: str | None = None
    try:
        ledger = await _read(state)
    except PortallocError as error:
        ledger, last_error = Ledger(), str(error)
        yield _event("error", None, {"code": error.code, "message": str(error)})
    newest, _ = await _record(journal, ledger, None) if last_error is None else (None, [])
    if last_event_id is not None:
        missed = await anyio.to_thread.run_sync(lambda: journal.since(last_event_id))
        if missed is None:
            yield _event("reset", newest, {"allocations": len(ledger.allocations)})
        else:
            yield _sent(missed)
    yield _event("ready", newest, {"allocations": len(ledger.allocations)})
    seen = newest
    while not state.stopping.is_set():
        await anyio.sleep(POLL_SECONDS)
        try:
            current = await _read(state)
        except PortallocError as error:
            if str(error) != last_error:
                last_error = str(error)
                yield _event("error", None, {"code": error.code, "message": str(error)})
            continue
        last_error = None
        if current is ledger:
            continue
        ledger = current
        seen, news = await _record(journal, current, seen)
        if news:
            yield _sent(news)
