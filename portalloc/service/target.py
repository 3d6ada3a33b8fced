"""The one ledger a service works on, and how: shared by the service's concerns.

``PortAllocationService`` splits its work by concern (allocation, cleanup, policy
administration, status); each concern reads the ledger and its settings from one
``LedgerTarget``, so a setting lives in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from portalloc.core.models import Ledger, PortPolicy
from portalloc.errors import PortallocError
from portalloc.service import readsync
from portalloc.service.host import HostLeases
from portalloc.storage.ledger import LedgerFile
from portalloc.storage.preconfig import load_preconfig


@dataclass
class LedgerTarget:
    """A ledger file and the service's settings for it.

    ``policy`` is the one asked for (``None``: whatever the ledger has); ``probe``
    ``False`` makes new allocations ignore what the OS holds; ``host`` is this
    machine's lease store as this ledger sees it, ``None`` when leases are off;
    ``allow_confusable`` lets a new model that looks like an existing one in
    (``portalloc.core.names``).
    """

    path: Path
    file: LedgerFile
    config_file: Path | None
    policy: PortPolicy | None
    probe: bool
    host: HostLeases | None = None
    allow_confusable: bool = False
    _preconfig: dict[tuple[str, int], tuple[int, int]] | None = field(default=None, repr=False)
    #: The version of the file last seen taken in by the host leases (``service.readsync``).
    _synced: list[str] = field(default_factory=list, repr=False)

    def read(self) -> Ledger:
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

    def check_policy(self, policy: PortPolicy) -> None:
        """Refuse a write when the ledger's policy is not the one this service was asked for."""
        if self.policy is not None and policy != self.policy:
            raise PortallocError(
                f"{self.path} already has the policy ({policy.describe()}), "
                f"not the one asked for ({self.policy.describe()})"
            )
