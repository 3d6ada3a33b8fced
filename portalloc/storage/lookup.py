"""The read-only fast path: find one key's pair without pydantic or a lock.

``portalloc get`` of a key that already has a pair is the most common call there is,
and most of its cost would be imports. This module reads the file the way the full
parser does (``files.read_regular_file``, strict UTF-8) and asks the codec's fast reader
(``codec.read_checked``), which answers only where ``codec.parse_ledger`` would accept
the file and give the same first row for the key; anything it does not know (a policy
field added later, say, or a ledger whose worktrees are separate) returns ``None`` and the caller takes the full path
(``PortAllocationService``), which reports what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from portalloc.core.limits import MAX_LEDGER_BYTES
from portalloc.errors import PortallocError
from portalloc.storage.codec import read_checked
from portalloc.storage.files import read_regular_file


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
    """The pair of ``(model, app_num)`` in the ledger at ``path``, or ``None`` (let the full path decide)."""
    try:
        text = read_regular_file(path, "ledger", MAX_LEDGER_BYTES).data.decode("utf-8")
    except (OSError, PortallocError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    checked = read_checked(text)
    if checked is None or checked.policy["worktrees"] != "shared":
        # Under ``worktrees: separate`` a linked worktree's pair is not the ledger's: the service knows it.
        return None
    # The first row of the key, as ``Ledger.find`` takes it.
    found = next((row for row in checked.rows if row[0] == model and row[1] == app_num), None)
    return None if found is None else Hit(found[2], found[3], checked.policy["probe"])
