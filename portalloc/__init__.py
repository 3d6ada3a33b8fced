"""portalloc: one backend/frontend port pair per (model, app_num), kept in a git-friendly JSON ledger.

Quick start::

    from portalloc import get_or_allocate_ports
    pair = get_or_allocate_ports("model_a", 1, ledger_path="portalloc.json")
    pair.backend, pair.frontend      # (5001, 8001)

The public API (``dir(portalloc)`` lists it):

* ``PortAllocationService(ledger_path=None, config_file=None, *, policy=None, lock_timeout=10,
  probe=True, create_ledger=True, leases=None, state_dir=None, allow_confusable=False)`` — the
  API over one ledger (``leases``: this machine's host leases, on unless ``PORTALLOC_LEASES=0``):
  ``get_or_allocate_ports``, ``get_ports``, ``get_all_allocations``, ``release_ports``,
  ``check_port_conflicts``, ``stats``, ``live_status`` …; ``get_or_allocate_ports(model, app_num)`` is
  the one-call shortcut.
* Data: ``PortPair`` (an alias of ``Allocation``: ``model``, ``app_num``, ``backend``,
  ``frontend``; ``backend, frontend = pair`` unpacks it), ``WorktreePair`` (a ``PortPair``
  with the ``worktree`` it belongs to: what a linked worktree gets under the policy's
  ``worktrees: separate``), ``Ledger``, ``PortPolicy``,
  ``Pool`` (for ``add_pool``), ``ImportRow`` (for ``import_allocations``); what the
  service reports: ``Conflict`` (``port`` and its ``holders``, each a ``Claim``),
  ``Usage`` (capacity in the policy and on this machine, for ``stats``), ``PairReport``
  (one allocation on this machine now, for ``live_status``: a ``PortReport`` per port,
  with its ``PortState`` and each ``ListeningProcess`` on it), ``ImportReport`` (an
  ``ImportOutcome`` per row, for ``import_allocations``).
* Errors: everything raised on purpose is a ``PortallocError`` whose message is one
  line for a user. ``InvalidKey``, ``InvalidVariableName``, ``InvalidValue`` (a
  ``PortPair``, ``PortPolicy`` or ``Pool`` built from bad values): bad input.
  ``ConfusableName``: a new model that looks like one the ledger has.
  ``LedgerCorrupt``: not valid JSON or not a ledger (never overwritten).
  ``LeaseStoreUnavailable``: this machine's host lease store cannot be used.
  ``LedgerUnavailable``: cannot be read or written (``LedgerMissing``: no ledger where a
  write needs one; ``portalloc init`` makes it). ``LedgerLocked``: the lock timed
  out. ``UnsafeFile``: not a regular file, or too large. ``NoFreePair``: the policy is
  full. ``ConfigError``: a bad ``port_config.json``. ``PolicyMismatch``: two ledgers'
  policies differ. ``GitError``: git missing or failed. ``EnvFileError``,
  ``ComposeFileError``: a ``.env`` or compose file portalloc will not touch.
  ``CommandNotFound`` (exit 127), ``CommandNotExecutable`` (126): ``portalloc run``.
  ``AppsDirMissing``, ``AppsDirLooksWrong``, ``AppDirUnavailable``: ``cleanup``'s apps
  directory. ``LedgerExists``: ``init`` where a ledger is. ``PolicyRefused``: a policy
  change an allocation would not fit. ``PreconditionFailed``: an HTTP ``If-Match`` /
  ``If-None-Match`` that does not hold. ``BatchInputError``, ``ImportSourceError``: a
  batch or an import file that cannot be read as one.

Names are imported on first use, so ``import portalloc`` (and the command line's fast
paths) do not pay for pydantic or filelock until they are needed.
"""

# ruff: noqa: F401
from __future__ import annotations

__version__ = "0.1.0"

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (a few ms, which ``portalloc --help`` and
#: ``get`` spend on nothing else of it): type checkers take any name ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False

if TYPE_CHECKING:  # for type checkers only (the names come from _PUBLIC on first use): hence no F401
    from portalloc.core.audit import (
        Conflict,
        Usage,
    )
    from portalloc.core.keys import (
        Claim,
    )
    from portalloc.core.models import (
        Allocation,
        Ledger,
        Pool,
        PortPair,
        PortPolicy,
    )
    from portalloc.core.worktreepair import (
        WorktreePair,
    )
    from portalloc.errors import (
        AppDirUnavailable,
        AppsDirLooksWrong,
        AppsDirMissing,
        BatchInputError,
        CommandNotExecutable,
        CommandNotFound,
        ComposeFileError,
        ConfigError,
        ConfusableName,
        EnvFileError,
        GitError,
        ImportSourceError,
        InvalidKey,
        InvalidValue,
        InvalidVariableName,
        LeaseStoreUnavailable,
        LedgerCorrupt,
        LedgerExists,
        LedgerLocked,
        LedgerMissing,
        LedgerUnavailable,
        NoFreePair,
        PolicyMismatch,
        PolicyRefused,
        PortallocError,
        PreconditionFailed,
        UnsafeFile,
    )
    from portalloc.integrations.importers import (
        ImportOutcome,
        ImportReport,
        ImportRow,
    )
    from portalloc.machine.live import (
        PairReport,
        PortReport,
    )
    from portalloc.machine.probe import (
        ListeningProcess,
        PortState,
    )
    from portalloc.service.facade import (
        PortAllocationService,
        get_or_allocate_ports,
    )

if TYPE_CHECKING:
    from typing import Any  # __getattr__'s annotation

#: Every public name and the module it lives in: the one list. ``__all__``, ``dir()`` and the
#: lazy import below derive from it; ``tests/cli/test_init.py`` pins the TYPE_CHECKING imports
#: above to it.
_PUBLIC = {
    "PortAllocationService": "portalloc.service.facade",
    "get_or_allocate_ports": "portalloc.service.facade",
    "Allocation": "portalloc.core.models",
    "Ledger": "portalloc.core.models",
    "PortPair": "portalloc.core.models",
    "PortPolicy": "portalloc.core.models",
    "WorktreePair": "portalloc.core.worktreepair",
    "Pool": "portalloc.core.models",
    "Conflict": "portalloc.core.audit",
    "Claim": "portalloc.core.keys",
    "Usage": "portalloc.core.audit",
    "PairReport": "portalloc.machine.live",
    "PortReport": "portalloc.machine.live",
    "PortState": "portalloc.machine.probe",
    "ListeningProcess": "portalloc.machine.probe",
    "ImportRow": "portalloc.integrations.importers",
    "ImportReport": "portalloc.integrations.importers",
    "ImportOutcome": "portalloc.integrations.importers",
    "AppDirUnavailable": "portalloc.errors",
    "AppsDirLooksWrong": "portalloc.errors",
    "AppsDirMissing": "portalloc.errors",
    "BatchInputError": "portalloc.errors",
    "CommandNotExecutable": "portalloc.errors",
    "CommandNotFound": "portalloc.errors",
    "ComposeFileError": "portalloc.errors",
    "ConfigError": "portalloc.errors",
    "ConfusableName": "portalloc.errors",
    "EnvFileError": "portalloc.errors",
    "GitError": "portalloc.errors",
    "ImportSourceError": "portalloc.errors",
    "InvalidKey": "portalloc.errors",
    "InvalidValue": "portalloc.errors",
    "InvalidVariableName": "portalloc.errors",
    "LeaseStoreUnavailable": "portalloc.errors",
    "LedgerCorrupt": "portalloc.errors",
    "LedgerExists": "portalloc.errors",
    "LedgerLocked": "portalloc.errors",
    "LedgerMissing": "portalloc.errors",
    "LedgerUnavailable": "portalloc.errors",
    "NoFreePair": "portalloc.errors",
    "PolicyMismatch": "portalloc.errors",
    "PolicyRefused": "portalloc.errors",
    "PortallocError": "portalloc.errors",
    "PreconditionFailed": "portalloc.errors",
    "UnsafeFile": "portalloc.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module_name = _PUBLIC.get(name)
    if module_name is None:
        raise AttributeError(f"module 'portalloc' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The public API only: dir() of a lazy module would otherwise miss what is not loaded yet, and
    # show the module's own machinery (_PUBLIC, TYPE_CHECKING, annotations).
    return sorted(__all__)
