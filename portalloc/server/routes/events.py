"""``GET /v1/events``: server-sent events, one per change of the ledger file, whoever made it.

The stream watches the file itself (a ``stat`` every ``POLL_SECONDS``; a read only when
its inode, size or times moved), so a change by the CLI, another server or a
``git checkout`` is seen as well as one made through this server. Events:

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

import anyio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from portalloc.core.models import Allocation, Ledger
from portalloc.errors import PortallocError
from portalloc.server.state import ServerState, State

router = APIRouter(tags=["events"])
#: How often the stream looks at the file; also how soon it ends after SIGTERM.
POLL_SECONDS = 0.1


@router.get(
    "/v1/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless text/event-stream"}},
)
async def events(state: State) -> StreamingResponse:
    """A ``text/event-stream`` of the ledger's changes (see the module's description)."""
    return StreamingResponse(
        _changes(state),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event(name: str, number: int, data: dict[str, Any]) -> str:
    return f"id: {number}\nevent: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _pairs(allocations: list[Allocation]) -> list[dict[str, Any]]:
    return [a.model_dump() for a in allocations]


async def _read(state: ServerState) -> Ledger:
    # The service's read is a stat when nothing changed; a thread keeps a locked service off the event loop.
    return await anyio.to_thread.run_sync(lambda: state.call(lambda service: service.ledger()))


async def _changes(state: ServerState) -> AsyncIterator[str]:
    number = 0
    last_error: str | None = None
    try:
        ledger = await _read(state)
    except PortallocError as error:
        ledger, last_error = Ledger(), str(error)
        yield _event("error", number, {"code": error.code, "message": str(error)})
    yield _event("ready", number, {"allocations": len(ledger.allocations)})
    while not state.stopping.is_set():
        await anyio.sleep(POLL_SECONDS)
        try:
            current = await _read(state)
        except PortallocError as error:
            if str(error) != last_error:
                last_error = str(error)
                number += 1
                yield _event("error", number, {"code": error.code, "message": str(error)})
            continue
        last_error = None
        if current is ledger:
            continue
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
