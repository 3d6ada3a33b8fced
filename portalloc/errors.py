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


class LedgerMissing(LedgerUnavailable):
    """There is no ledger where a write was asked for, and this write may not create one (see ``portalloc init``)."""


class LedgerExists(PortallocError):
    """``LedgerFile.create`` (``portalloc init``) found a file already at the ledger's path. It is left as it was."""


class LedgerLocked(PortallocError):
    """The ledger's lock file could not be acquired within the timeout."""


class UnsafeFile(PortallocError):
    """A file portalloc was asked to read that is not a regular file (a FIFO, a device…) or is too large."""


class NoFreePair(PortallocError):
    """Every pair the policy holds is in use."""


class ConfigError(PortallocError):
    """The pre-configuration file (``port_config.json``) is missing or malformed."""


class PolicyMismatch(PortallocError):
    """Two ledgers that must share a policy (the sides of a merge) do not."""


class GitError(PortallocError):
    """git is missing, failed, or the directory is not inside a git repository."""


class InvalidVariableName(PortallocError, ValueError):
    """An environment variable name (or ``--prefix``) that a shell or a ``.env`` file cannot hold."""


class EnvFileError(PortallocError):
    """A ``.env`` file whose portalloc block is damaged (unterminated, or more than one). It is not written."""


class ComposeFileError(PortallocError):
    """A docker-compose file that cannot be read or is not a compose file."""


class CommandNotFound(PortallocError):
    """``portalloc run`` was given a command that is not on PATH (exit 127, as a shell would)."""

    exit_code = 127


class CommandNotExecutable(PortallocError):
    """``portalloc run`` found the command but cannot execute it (exit 126, as a shell would)."""

    exit_code = 126
