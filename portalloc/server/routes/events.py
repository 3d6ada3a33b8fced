"""``GET /v1/events``: server-sent events, one per change of the ledger file, whoever made it.

The server watches the file itself (one watcher for all streams, ``server/broadcast.py``:
a ``stat`` every ``POLL_SECONDS``, a read only when its inode, size or times moved), so
a change by the CLI, another server or a ``git checkout`` is seen as well as one made
through this server. At most ``serve --max-streams`` streams are open at once; one more
is answered 503 with ``Retry-After``. Events:

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
from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from portalloc.core.models import Ledger
from portalloc.server.broadcast import Subscription
from portalloc.server.errors import RETRY_AFTER
from portalloc.server.journal import Event, EventJournal
from portalloc.server.problems import problem_response
from portalloc.server.state import State

router = APIRouter(tags=["events"])


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
) -> Response:
    """A ``text/event-stream`` of the ledger's changes (see the module's description)."""
    subscription = state.changes.subscribe()
    if subscription is None:
        return problem_response(
            503,
            "too_many_streams",
            f"{state.changes.max_streams} event streams are open, the most this server allows "
            "(portalloc serve --max-streams); try again later",
            {"Retry-After": RETRY_AFTER},
        )
    return StreamingResponse(
        _changes(subscription, request.app.state.journal, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # The slot is given back however the stream ends: a client that goes away while the
        # stream is parked at a ``yield`` leaves the generator to the garbage collector.
        background=BackgroundTask(subscription.close),
    )


def _event(name: str, number: int | None, data: dict[str, Any]) -> str:
    # An event without an id (error) leaves the client's last event id where it was.
    line = "" if number is None else f"id: {number}\n"
    return f"{line}event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sent(events: list[Event]) -> str:
    return "".join(_event(event.name, event.id, event.data) for event in events)


async def _record(journal: EventJournal, ledger: Ledger, seen: int | None) -> tuple[int, list[Event]]:
    return await anyio.to_thread.run_sync(lambda: journal.record(list(ledger.allocations), seen))


async def _changes(subscription: Subscription, journal: EventJournal, last_event_id: str | None) -> AsyncIterator[str]:
    last_error: str | None = None
    try:
        first = await subscription.next()  # what the one watcher read last (it reads at once for a first stream)
        if first is None:
            return
        ledger = first.ledger
        if first.error is not None:
            last_error = str(first.error)
            yield _event("error", None, {"code": first.error.code, "message": last_error})
        newest, _ = await _record(journal, ledger, None) if last_error is None else (None, [])
        if last_event_id is not None:
            missed = await anyio.to_thread.run_sync(lambda: journal.since(last_event_id))
            if missed is None:
                yield _event("reset", newest, {"allocations": len(ledger.allocations)})
            else:
                yield _sent(missed)
        yield _event("ready", newest, {"allocations": len(ledger.allocations)})
        seen = newest
        while (snapshot := await subscription.next()) is not None:
            if snapshot.error is not None:
                if str(snapshot.error) != last_error:
                    last_error = str(snapshot.error)
                    yield _event("error", None, {"code": snapshot.error.code, "message": last_error})
                continue
            last_error = None
            if snapshot.ledger is ledger:
                continue
            ledger = snapshot.ledger
            seen, news = await _record(journal, ledger, seen)
            if news:
                yield _sent(news)
    finally:
        subscription.close()
