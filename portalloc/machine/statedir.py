"""This machine's state directory for portalloc: what belongs to the host, never to a work tree or the ledger.

``$PORTALLOC_STATE_DIR``, else ``$XDG_STATE_HOME/portalloc``, else
``~/.local/state/portalloc`` (the XDG base directory rule for state that should survive
a restart but is not worth backing up).
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """The directory (not created here) where this user's portalloc keeps machine state."""
    explicit = os.environ.get("PORTALLOC_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "portalloc"
