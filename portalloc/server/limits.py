"""How much of the server one client may hold: the knobs, in one place (``portalloc serve`` options).

``connections.py`` applies the connection ones, ``broadcast.py`` the stream cap, and
``bodylimit.py`` the body size. This module imports nothing of the ``serve`` extra, so
the command line can show the defaults without it.
"""

from __future__ import annotations

from typing import NamedTuple


class ServerLimits(NamedTuple):
    """The limits one server applies; the defaults are ``portalloc serve``'s."""

    #: Open connections at most; past it the one waiting longest for its request is closed.
    max_connections: int = 1000
    #: Seconds a connection has to send a whole request (headers and body), counted from
    #: when it opened or its previous response ended; then it is closed.
    request_timeout: float = 10.0
    #: Open ``/v1/events`` streams at most; one more is answered 503.
    max_streams: int = 100
