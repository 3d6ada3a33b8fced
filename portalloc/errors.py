"""The one exception hierarchy. The command line prints ``Error: <message>`` for any of them."""

from __future__ import annotations


class PortallocError(Exception):
    """Base class of every error portalloc raises on purpose; its message is one line for a user."""

    exit_code = 1


class InvalidKey(PortallocError, ValueError):
    """A model name or app number that cannot be a ledger key."""


class LedgerCorrupt(PortallocError):
    """The ledger file is not valid JSON or not a valid ledger. It is never overwritten."""


class LedgerUnavailable(PortallocError):
    """The ledger file or its directory cannot be read or written (missing directory, permissions…)."""


class LedgerLocked(PortallocError):
    """The ledger's lock file could not be acquired within the timeout."""


class NoFreePair(PortallocError):
    """Every pair the policy holds is in use."""


class ConfigError(PortallocError):
    """The pre-configuration file (``port_config.json``) is missing or malformed."""
