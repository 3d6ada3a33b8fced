"""The read-only fast path: find one key's pair without pydantic or a lock.

``portalloc get`` of a key that already has a pair is the most common call there is,
and most of its cost would be imports. This module parses the file with ``json`` and
checks only what the answer depends on: the JSON syntax, the ledger version, and the
matched row's ports. Anything unusual returns ``None`` and the caller takes the full
path (``PortAllocationService``), which validates the whole file and reports problems.
Writes and ``portalloc check`` always validate the whole file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from portalloc.errors import UnsafeFile
from portalloc.files import read_regular_file
from portalloc.limits import LEDGER_VERSION, MAX_LEDGER_BYTES, MAX_PORT, MIN_PORT


class Hit(NamedTuple):
    """A pair found by ``find_pair``, and whether the ledger's policy lets this machine be probed."""

    backend: int
    frontend: int
    probe: bool

    @property
    def ports(self) -> tuple[int, int]:
        """``(backend, frontend)``."""
        return self.backend, self.frontend


def find_pair(path: Path, model: str, app_num: int) -> Hit | None:
    """The pair of ``(model, app_num)`` in the ledger at ``path``, or ``None``."""
    try:
        # Bounded and regular only: a FIFO must not hang ``get``, nor /dev/zero fill memory.
        raw = json.loads(read_regular_file(path, "ledger", MAX_LEDGER_BYTES).data)
    except (OSError, ValueError, RecursionError, UnsafeFile):
        return None  # the full path reports what is wrong
    if not isinstance(raw, dict) or raw.get("version") != LEDGER_VERSION:
        return None
    rows = raw.get("allocations")
    if not isinstance(rows, list):
        return None
    for row in rows:
        if isinstance(row, dict) and row.get("model") == model and _same_int(row.get("app_num"), app_num):
            backend, frontend = row.get("backend"), row.get("frontend")
            if isinstance(backend, int) and isinstance(frontend, int) and _is_port(backend) and _is_port(frontend):
                return Hit(backend, frontend, _probe_allowed(raw)) if backend != frontend else None
            return None
    return None


def _probe_allowed(raw: dict[str, object]) -> bool:
    policy = raw.get("policy")
    return not (isinstance(policy, dict) and policy.get("probe") is False)


def _same_int(value: object, expected: int) -> bool:
    return type(value) is int and value == expected


def _is_port(value: object) -> bool:
    return type(value) is int and MIN_PORT <= value <= MAX_PORT
