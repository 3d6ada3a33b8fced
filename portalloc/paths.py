"""Where the ledger and the pre-configuration live when nobody says.

Kept free of pydantic and filelock: the command line resolves paths on every call.
"""

from __future__ import annotations

from pathlib import Path

LEDGER_NAME = "portalloc.json"
#: Looked for beside the ledger, in this order.
CONFIG_NAMES = ("port_config.json", "misc/port_config.json")


def find_ledger(start: Path) -> Path:
    """The default ledger for a command run in ``start``.

    The nearest ``portalloc.json`` in ``start`` or a parent, stopping at the root of
    the git repository; if there is none, ``portalloc.json`` at that repository root,
    or in ``start`` outside a repository.
    """
    start = start.absolute()
    for directory in (start, *start.parents):
        candidate = directory / LEDGER_NAME
        if candidate.exists():
            return candidate
        if (directory / ".git").exists():
            return candidate
    return start / LEDGER_NAME


def find_config(ledger: Path) -> Path | None:
    """The default pre-configuration: ``port_config.json`` or ``misc/port_config.json`` beside the ledger."""
    for name in CONFIG_NAMES:
        candidate = ledger.parent / name
        if candidate.is_file():
            return candidate
    return None
