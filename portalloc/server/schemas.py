"""The request and response bodies of the HTTP API.

An allocation is the ledger's own ``Allocation`` model (``model``, ``app_num``,
``backend``, ``frontend``), so the OpenAPI document shows the same keys and limits the
ledger enforces. The reports (check, stats, status, policy) are ``portalloc.reports``'
schemas, the very ones the CLI's ``--json`` dumps; this module adds what only HTTP has.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from portalloc.core.keys import MODEL_NAME_PATTERN
from portalloc.core.limits import MAX_APP_NUM, MAX_MODEL_LENGTH
from portalloc.core.models import Allocation, AppNum, ModelName

#: The most keys one batch request may allocate (a bound on the work one request asks for).
MAX_BATCH_KEYS = 10_000

_STRICT = ConfigDict(extra="forbid")


def describe_model_name(schema: dict[str, Any]) -> None:
    """Give a model name's JSON schema the ledger's rule: 1 to 200 characters, ``MODEL_NAME_PATTERN``."""
    schema.pop("anyOf", None)  # an optional query parameter is absent, never null
    schema.update(type="string", minLength=1, maxLength=MAX_MODEL_LENGTH, pattern=MODEL_NAME_PATTERN)


class KeyRequest(BaseModel):
    """One ``(model, app_num)`` to allocate; strict: ``true``, ``"1"`` and ``1.0`` are no app numbers, as in the CLI."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: ModelName = Field(json_schema_extra=describe_model_name)
    app_num: AppNum = Field(json_schema_extra={"minimum": 1, "maximum": MAX_APP_NUM})


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
    "Health",
    "KeyRequest",
]
