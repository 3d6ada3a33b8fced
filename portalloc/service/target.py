"""The one ledger a service works on, and how: shared by the service's concerns.

``PortAllocationService`` splits its work by concern (allocation, cleanup, policy
administration, status); each concern reads the ledger and its settings from one
``LedgerTarget``, so a setting lives in exactly one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from portalloc.errors import PortallocError
from portalloc.service import readsync
from portalloc.service.host import HostLeases
from portalloc.storage.ledger import LedgerFile
from portalloc.storage.preconfig import load_preconfig

if TYPE_CHECKING:
    from portalloc.core.models import PortPolicy
    from portalloc.core.shapes import LedgerShape, PolicyShape

#: The ledger representation the target's file reads (``storage.ledger.LedgerFile``).
L = TypeVar("L", bound="LedgerShape")


class LedgerTarget(Generic[L]):
    """A ledger file and the service's settings for it.

    ``policy`` is the one asked for (``None``: whatever the ledger has); ``probe``
    ``False`` makes new allocations ignore what the OS holds; ``host`` is this
    machine's lease store as this ledger sees it, ``None`` when leases are off;
    ``allow_confusable`` lets a new model that looks like an existing one in
    (``portalloc.core.names``). The service's target reads models; the command line's
    write of a new key reads plain classes (``plain``). A plain class, not a dataclass:
    defining one costs about 1 ms at every write's start.
    """

    def __init__(
        self,
        path: Path,
        file: LedgerFile[L],
        config_file: Path | None,
        policy: PortPolicy | None,
        probe: bool,
        host: HostLeases | None = None,
        allow_confusable: bool = False,
    ) -> None:
        self.path, self.file, self.config_file, self.policy = path, file, config_file, policy
        self.probe, self.host, self.allow_confusable = probe, host, allow_confusable
        self._preconfig: dict[tuple[str, int], tuple[int, int]] | None = None
        #: The version of the file last seen taken in by the host leases (``service.readsync``).
        self._synced: list[str] = []

    @classmethod
    def plain(
        cls,
        path: Path,
        config_file: Path | None,
        *,
        lock_timeout: float,
        probe: bool,
        create_ledger: bool,
        leases: bool,
        allow_confusable: bool,
    ) -> LedgerTarget[LedgerShape]:
        """A target whose file reads plain classes where it can (``LedgerFile(plain=True)``), with no policy
        asked for and the default lease store: a command-line write that never imports pydantic."""
        check_lock_timeout(lock_timeout)
        file = LedgerFile(path, lock_timeout, create_missing=create_ledger, plain=True)
        host = HostLeases(path) if leases else None
        return LedgerTarget(path, file, config_file, None, probe, host, allow_confusable)

    def read(self) -> L:
        """The ledger for a read: with host leases on, its rows are leased here first (best effort) if the file
        changed since they last were (``service.readsync``). Writes read ``file`` and lease what they write."""
        return readsync.read(self.file, self.host, self._synced)

    def written(self) -> None:
        """Say that the write just made leased every row of the ledger it wrote (``service.readsync``)."""
        readsync.written(self.file, self.host, self._synced)

    def preconfig(self) -> dict[tuple[str, int], tuple[int, int]]:
        """The pre-configured pairs (``port_config.json``), read once."""
        if self._preconfig is None:
            self._preconfig = load_preconfig(self.config_file) if self.config_file else {}
        return self._preconfig

    def check_policy(self, policy: PolicyShape) -> None:
        """Refuse a write when the ledger's policy is not the one this service was asked for."""
        if self.policy is not None and policy != self.policy:
            raise PortallocError(
                f"{self.path} already has the policy ({policy.describe()}), "
                f"not the one asked for ({self.policy.describe()})"
            )


def check_lock_timeout(seconds: float) -> None:
    """Refuse a lock timeout that is not a number of seconds, 0 or more (``PortallocError``)."""
    # NaN slips through every comparison, and a negative timeout means nothing sensible.
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise PortallocError(f"the lock timeout must be a number of seconds, 0 or more, not {seconds!r}")
