"""``portalloc serve``: the ``PortAllocationService`` over HTTP (FastAPI on uvicorn, extra ``portalloc[serve]``).

The layout follows FastAPI's tutorial: ``app.py`` builds the application, ``policy.py``
holds every request check in one place (Host, Origin, token, JSON bodies),
``schemas.py`` the request and response models, ``errors.py`` how a ``PortallocError``
becomes a status and a JSON body, ``state.py`` what the routes share (the service and
its write lock), ``routes/`` one small module per resource, and ``run.py`` the sockets,
the token file and the graceful stop. What keeps one local process from stalling the
server: ``limits.py`` (the knobs), ``connections.py`` (request deadline, connection
cap), ``bodylimit.py``, ``broadcast.py`` (one ledger watcher for all event streams)
and ``quietlog.py`` (a log repeats cannot flood).
"""

from __future__ import annotations
