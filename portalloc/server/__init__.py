"""``portalloc serve``: the ``PortAllocationService`` over HTTP (FastAPI on uvicorn, extra ``portalloc[serve]``).

The layout follows FastAPI's tutorial: ``app.py`` builds the application, ``policy.py``
holds every request check in one place (Host, Origin, methods, token, JSON bodies)
with ``methods.py`` (which methods a path has, ``HEAD`` as ``GET``), ``schemas.py`` the
request and response models, ``problems.py`` the RFC 9457 error body and ``errors.py``
how a ``PortallocError`` becomes a status and a problem, ``conditional.py`` the
``ETag`` and preconditions, ``openapi.py`` the document as the server enforces it,
``openmetrics.py`` ``/metrics`` for either scraper and the request figures,
``journal.py`` the event ids that survive restarts, ``page.py`` (with ``page.html``)
the page at ``/``, ``state.py`` what the routes share (the service and its lock),
``routes/`` one small module per resource, and ``run.py`` the sockets, the token file
and the graceful stop.
"""

from __future__ import annotations
