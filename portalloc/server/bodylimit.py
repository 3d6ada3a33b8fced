"""The request body's limit, applied to the bytes received.

The policy (``policy.py``) refuses a request whose ``Content-Length`` says it is too
big before anything is read; a chunked body has no length (a 300 MiB one was once
read whole, 666 MiB at the peak), so ``BodyLimit`` counts what arrives and answers 413
as soon as the count passes the limit: the rest is never kept, whatever the client
goes on sending.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portalloc.server.policy import MAX_BODY_BYTES
from portalloc.server.problems import problem_response


class BodyLimit:
    """ASGI middleware: a request body larger than ``max_bytes`` by its bytes received gets 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body; answer 413 once the count passes ``max_bytes``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        started = answered = False

        async def counted_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] != "http.request" or answered:
                return message
            received += len(message.get("body", b""))
            if received <= self.max_bytes:
                return message
            if not started:
                too_large = problem_response(
                    413, "body_too_large", f"the request body passed the limit of {self.max_bytes:,} bytes"
                )
                await too_large(scope, receive, send)
                answered = True
            # The app sees the client go away: it stops reading, and what it answers is dropped.
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, guarded_send)
