"""``GET /v1/events``: server-sent events, one per change of the ledger file, whoever made it.

The server watches the file itself (one watcher for all streams, ``server/broadcast.py``:
a ``stat`` every ``POLL_SECONDS``, a read only when its inode, size or times moved), so
a change by the CLI, another server or a ``git checkout`` is seen as well as one made
through this server. At most ``serve --max-streams`` streams are open at once; one more
is answered 503 with ``Retry-After``. Events:

- ``ready`` once, when the stream starts: ``{"allocations": N}``;
- ``change`` for each change seen: ``{"added": [...], "removed": [...], "allocations": N}``
  (allocations as ``{model, app_num, backend, frontend}``); changes closer together than
  the poll interval arrive as one event, and a rewrite that changes no allocation
  (``portalloc fmt``) sends none;
- ``error`` when the ledger cannot be read: ``{"code": …, "message": …}`` (once per
  distinct error; the stream goes on and reports the next change).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from portalloc.core.models import Allocation
from portalloc.server.broadcast import Subscription
from portalloc.server.errors import RETRY_AFTER, error_response
from portalloc.server.state import State

router = APIRouter(tags=["events"])


@router.get(
    "/v1/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless text/event-stream"}},
)
async def events(state: State) -> Response:
    """A ``text/event-stream`` of the ledger's changes (see the module's description)."""
    subscription = state.changes.subscribe()
    if subscription is None:
        return error_response(
            503,
            "too_many_streams",
            f"{state.changes.max_streams} event streams are open, the most this server allows "
            "(portalloc serve --max-streams); try again later",
            {"Retry-After": RETRY_AFTER},
        )
    return StreamingResponse(
        _changes(subscription),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # The slot is given back however the stream ends: a client that goes away while the
        # stream is parked at a ``yield`` leaves the generator to the garbage collector.
        background=BackgroundTask(subscription.close),
    )


def _event(name: str, number: int, data: dict[str, Any]) -> str:
    return f"id: {number}\nevent: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _pairs(allocations: list[Allocation]) -> list[dict[str, Any]]:
    return [a.model_dump() for a in allocations]


async def _changes(subscription: Subscription) -> AsyncIterator[str]:
    number = 0
    last_error: str | None = None
    try:
        first = await subscription.next()
        if first is None:
            return
        ledger = first.ledger
        if first.error is not None:
            last_error = str(first.error)
            yield _event("error", number, {"code": first.error.code, "message": last_error})
        yield _event("ready", number, {"allocations": len(ledger.allocations)})
        while (snapshot := await subscription.next()) is not None:
            if snapshot.error is not None:
                if str(snapshot.error) != last_error:
                    last_error = str(snapshot.error)
                    number += 1
                    yield _event("error", number, {"code": snapshot.error.code, "message": last_error})
                continue
            last_error = None
            current = snapshot.ledger
            before, after = set(ledger.allocations), set(current.allocations)
            added = [a for a in current.allocations if a not in before]
            removed = [a for a in ledger.allocations if a not in after]
            ledger = current
            if added or removed:
                number += 1
                yield _event(
                    "change",
                    number,
                    {"added": _pairs(added), "removed": _pairs(removed), "allocations": len(current.allocations)},
                )
    finally:
        subscription.close()
