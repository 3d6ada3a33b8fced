"""The one exception hierarchy. The command line prints ``Error: <message>`` for any of them."""

from __future__ import annotations


class PortallocError(Exception):
    """Base class of every error portalloc raises on purpose; its message is one line for a user."""

    #: Stable name of the error, the same for the CLI and the HTTP API (the problem's ``code``).
    code = "error"
    exit_code = 1


class InvalidKey(PortallocError, ValueError):
    """A model name or app number that cannot be a ledger key."""

    code = "invalid_key"


class ConfusableName(PortallocError):
    """A new model name that looks the same as a model the ledger has (``core/names.py``); allowed on request."""

    code = "confusable_name"


class InvalidValue(PortallocError, ValueError):
    """A ``PortPair``, ``PortPolicy`` or ``Pool`` built (through the API) from values it cannot hold."""

    code = "invalid_value"


class LedgerCorrupt(PortallocError):
    """The ledger file is not valid JSON or not a valid ledger. It is never overwritten."""

    code = "ledger_corrupt"


class LedgerUnavailable(PortallocError):
    """The ledger file or its directory cannot be read or written (missing directory, permissions…)."""

    code = "ledger_unavailable"


class LedgerMissing(LedgerUnavailable):
    """There is no ledger where a write was asked for, and this write may not create one (see ``portalloc init``)."""

    code = "ledger_missing"


class LedgerExists(PortallocError):
    """``LedgerFile.create`` (``portalloc init``) found a file already at the ledger's path. It is left as it was."""

    code = "ledger_exists"


class PreconditionFailed(PortallocError):
    """A conditional write (HTTP ``If-Match`` / ``If-None-Match``) whose condition the key's pair does not meet."""

    code = "precondition_failed"


class LedgerLocked(PortallocError):
    """The ledger's lock file could not be acquired within the timeout."""

    code = "ledger_locked"


class UnsafeFile(PortallocError):
    """A file portalloc was asked to read that is not a regular file (a FIFO, a device…) or is too large."""

    code = "unsafe_file"


class AppsDirMissing(PortallocError):
    """The apps directory given to ``cleanup`` (or to allocate an app's directory) does not exist."""

    code = "apps_dir_missing"


class AppsDirLooksWrong(PortallocError):
    """``cleanup`` found no app of the ledger under the apps directory: most likely the wrong directory."""

    code = "apps_dir_looks_wrong"


class AppDirUnavailable(PortallocError):
    """An app's directory cannot be created (permissions, a file in the way, a name too long…)."""

    code = "app_dir_unavailable"


class NoFreePair(PortallocError):
    """Every pair the policy holds is in use."""

    code = "no_free_pair"


class ConfigError(PortallocError):
    """The pre-configuration file (``port_config.json``) is missing or malformed."""

    code = "config_error"


class ImportSourceError(PortallocError):
    """A file given to ``portalloc import`` that cannot be read as any format it imports."""

    code = "import_source_error"


class BatchInputError(PortallocError):
    """A batch of keys (``get-many``, ``release-many``) with lines that are not keys; every bad line is named."""

    code = "batch_input_error"


class PolicyRefused(PortallocError):
    """A policy change (``policy set``, ``pool add``) that some existing allocation would not fit."""

    code = "policy_refused"


class PolicyMismatch(PortallocError):
    """Two ledgers that must share a policy (the sides of a merge) do not."""

    code = "policy_mismatch"


class GitError(PortallocError):
    """git is missing, failed, or the directory is not inside a git repository."""

    code = "git_error"


class InvalidVariableName(PortallocError, ValueError):
    """An environment variable name (or ``--prefix``) that a shell or a ``.env`` file cannot hold."""

    code = "invalid_variable_name"


class EnvFileError(PortallocError):
    """A ``.env`` file whose portalloc block is damaged (unterminated, or more than one). It is not written."""

    code = "env_file_error"


class ComposeFileError(PortallocError):
    """A docker-compose file that cannot be read or is not a compose file."""

    code = "compose_file_error"


class CommandNotFound(PortallocError):
    """``portalloc run`` was given a command that is not on PATH (exit 127, as a shell would)."""

    code = "command_not_found"
    exit_code = 127


class CommandNotExecutable(PortallocError):
    """``portalloc run`` found the command but cannot execute it (exit 126, as a shell would)."""

    code = "command_not_executable"
    exit_code = 126


class LeaseStoreUnavailable(PortallocError):
    """This user's host lease store cannot be opened or written (no home, permissions, another user's store)."""

    code = "lease_store_unavailable"
