"""This machine's state directory for portalloc: what belongs to the host, never to a work tree or the ledger.

``$PORTALLOC_STATE_DIR``, else ``$XDG_STATE_HOME/portalloc``, else
``~/.local/state/portalloc`` (the XDG base directory rule for state that should survive
a restart but is not worth backing up).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The host lease store's file in the state directory (``machine.leases``).
STORE_NAME = "leases.sqlite3"


def placeable() -> bool:
    """Whether there is somewhere to put state: one of ``PORTALLOC_STATE_DIR``, ``XDG_STATE_HOME``, ``HOME`` is set.

    Without them ``Path.home()`` would guess from the password database, which may name
    a directory that is not this user's to write (a service account's ``/``).
    """
    return any(os.environ.get(name) for name in ("PORTALLOC_STATE_DIR", "XDG_STATE_HOME", "HOME"))


def state_dir() -> Path:
    """The directory (not created here) where this user's portalloc keeps machine state."""
    explicit = os.environ.get("PORTALLOC_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "portalloc"
