"""``GET /healthz``: the server is up (it reads nothing)."""

from __future__ import annotations

from fastapi import APIRouter

from portalloc.server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """``{"status": "ok"}`` while the server runs."""
    return Health(status="ok")
