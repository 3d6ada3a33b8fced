"""portalloc: one backend/frontend port pair per (model, app_num), kept in a git-friendly JSON ledger.

The public API is re-exported here lazily, so that ``import portalloc`` (and the
command line's fast paths) do not pay for pydantic until they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from portalloc.errors import (
        ConfigError,
        InvalidKey,
        LedgerCorrupt,
        LedgerLocked,
        LedgerUnavailable,
        NoFreePair,
        PortallocError,
    )
    from portalloc.models import Allocation, Ledger, PortPair, PortPolicy
    from portalloc.service import PortAllocationService, get_or_allocate_ports

_LAZY = {
    "PortAllocationService": "portalloc.service",
    "get_or_allocate_ports": "portalloc.service",
    "Allocation": "portalloc.models",
    "Ledger": "portalloc.models",
    "PortPair": "portalloc.models",
    "PortPolicy": "portalloc.models",
    "ConfigError": "portalloc.errors",
    "InvalidKey": "portalloc.errors",
    "LedgerCorrupt": "portalloc.errors",
    "LedgerLocked": "portalloc.errors",
    "LedgerUnavailable": "portalloc.errors",
    "NoFreePair": "portalloc.errors",
    "PortallocError": "portalloc.errors",
}

__all__ = [
    "Allocation",
    "ConfigError",
    "InvalidKey",
    "Ledger",
    "LedgerCorrupt",
    "LedgerLocked",
    "LedgerUnavailable",
    "NoFreePair",
    "PortAllocationService",
    "PortPair",
    "PortPolicy",
    "PortallocError",
    "__version__",
    "get_or_allocate_ports",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'portalloc' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
