"""The request and response bodies of the HTTP API.

An allocation is the ledger's own ``Allocation`` model (``model``, ``app_num``,
``backend``, ``frontend``), so the OpenAPI document shows the same keys and limits the
ledger enforces. The reports (check, stats, status, policy) are ``portalloc.reports``'
schemas, the very ones the CLI's ``--json`` dumps; this module adds what only HTTP has.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from portalloc.core.models import Allocation, AppNum, ModelName

#: The most keys one batch request may allocate (a bound on the work one request asks for).
MAX_BATCH_KEYS = 10_000

_STRICT = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code`` and the one-line message the CLI prints after ``Error:``."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code": …, "message": …}}``."""

    error: ErrorDetail


class KeyRequest(BaseModel):
    """One ``(model, app_num)`` to allocate; strict: ``true``, ``"1"`` and ``1.0`` are no app numbers, as in the CLI."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: ModelName
    app_num: AppNum


class BatchRequest(BaseModel):
    """``POST /v1/allocations/batch``: keys allocated under one lock and one write, in order."""

    model_config = _STRICT

    keys: list[KeyRequest] = Field(max_length=MAX_BATCH_KEYS)


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]


__all__ = [
    "Allocation",
    "BatchRequest",
    "ErrorBody",
    "ErrorDetail",
    "Health",
    "KeyRequest",
]
