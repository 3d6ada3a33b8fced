"""The request and response bodies of the HTTP API.

An allocation is the ledger's own ``Allocation`` model (``model``, ``app_num``,
``backend``, ``frontend``), so the OpenAPI document shows the same keys and limits the
ledger enforces. The rest mirror the CLI's ``--json`` output key for key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from portalloc.core.models import Allocation, AppNum, ModelName, PortPolicy

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


class Key(BaseModel):
    """One ``(model, app_num)`` to allocate; strict: ``true``, ``"1"`` and ``1.0`` are no app numbers, as in the CLI."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: ModelName
    app_num: AppNum


class BatchRequest(BaseModel):
    """``POST /v1/allocations/batch``: keys allocated under one lock and one write, in order."""

    model_config = _STRICT

    keys: list[Key] = Field(max_length=MAX_BATCH_KEYS)


class ConflictHolder(BaseModel):
    """One holder of a conflicted port; ``role`` is ``None`` for a key held twice."""

    model: str
    app_num: int
    role: Literal["backend", "frontend"] | None


class ConflictReport(BaseModel):
    """A port held more than once (``port`` set) or a key that appears more than once (``port`` null)."""

    port: int | None
    holders: list[ConflictHolder]


class CheckReport(BaseModel):
    """``GET /v1/check``: 200 with ``ok`` true when clean, 409 with the conflicts otherwise."""

    ok: bool
    allocations: int
    conflicts: list[ConflictReport]


class StatsReport(BaseModel):
    """``GET /v1/stats``: the keys of ``portalloc stats --json``."""

    ledger: str
    allocations: int
    models: int
    capacity: int
    free_pairs: int
    bad_port_pairs: int
    off_sequence: int
    policy: PortPolicy


class Holder(BaseModel):
    """A process that holds a port."""

    pid: int
    name: str


class LivePort(BaseModel):
    """One port as this machine sees it now."""

    state: str
    own: bool
    held: bool
    holders: list[Holder]


class LivePair(BaseModel):
    """The backend and frontend of one allocation, live."""

    backend: LivePort
    frontend: LivePort


class LiveAllocation(BaseModel):
    """An allocation and what this machine does with its ports (``status --json``)."""

    model: str
    app_num: int
    backend: int
    frontend: int
    live: LivePair


class Finding(BaseModel):
    """A live problem with one port of one allocation."""

    model: str
    app_num: int
    role: str
    port: int
    message: str


class StatusReport(BaseModel):
    """``GET /v1/status``: the keys of ``portalloc status --json``."""

    ledger: str
    allocations: list[LiveAllocation]
    findings: list[Finding]


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]


__all__ = [
    "Allocation",
    "BatchRequest",
    "CheckReport",
    "ConflictHolder",
    "ConflictReport",
    "ErrorBody",
    "ErrorDetail",
    "Finding",
    "Health",
    "Holder",
    "Key",
    "LiveAllocation",
    "LivePair",
    "LivePort",
    "StatsReport",
    "StatusReport",
]
