"""A ledger file read into the plain classes (``core.plain``): a command-line write without pydantic.

The codec's fast reader (``codec.read_checked``) accepts a file only where the models
would, and reads it as they do; ``codec._built`` makes models of its reading, and
``plain_ledger`` here makes the plain classes of the same values. A file the fast reader
refuses goes through the models (``codec.parse_ledger``), which say what is wrong, so a
plain read answers exactly where the models answer, and the same
(``tests/storage/test_plainread.py`` pins it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from portalloc.core.limits import LEDGER_VERSION
from portalloc.core.plain import PlainAllocation, PlainLedger, PlainPolicy, PlainPool
from portalloc.storage.codec import (
    POLICY_DEFAULTS,
    POLICY_LISTS,
    CheckedLedger,
    LineCache,
    parse_ledger,
    read_checked,
)

if TYPE_CHECKING:
    from portalloc.core.shapes import LedgerShape


def read_plain(data: bytes | None, path: Path | str, lines: LineCache | None = None) -> LedgerShape:
    """What ``storage.ledger.LedgerFile(plain=True)`` reads: ``parse_plain``, or the new ledger for no file."""
    return new_plain_ledger() if data is None else parse_plain(data, path, lines)


def parse_plain(data: bytes, path: Path | str, lines: LineCache | None = None) -> LedgerShape:
    """``codec.parse_ledger(data, path)``'s values, as plain classes when the fast reader accepts the file.

    Any other file is parsed by the models (a ``Ledger``, or ``LedgerCorrupt`` saying what is wrong).
    ``lines``: the file's line cache, given the lines of a canonical file's rows (``LineCache.seed``).
    """
    try:
        checked = read_checked(data.decode("utf-8"))
    except UnicodeDecodeError:
        checked = None
    if checked is None:
        return parse_ledger(data, path)
    ledger = plain_ledger(checked)
    if lines is not None and checked.lines is not None:
        lines.seed(ledger.allocations, checked.lines)
    return ledger


def plain_ledger(checked: CheckedLedger) -> PlainLedger:
    """The ``PlainLedger`` of a file ``read_checked`` accepted (its values need no second check)."""
    fields = checked.policy
    pools = [PlainPool(**pool) for pool in fields["pools"]]
    policy = PlainPolicy(**{**fields, "pools": pools})
    rows = [PlainAllocation(*row) for row in checked.rows]
    return PlainLedger(checked.version, policy, rows)


def new_plain_ledger() -> PlainLedger:
    """What a missing file reads as: no allocations, the default policy (``Ledger()``'s values)."""
    return plain_ledger(CheckedLedger({**POLICY_DEFAULTS, **{name: [] for name in POLICY_LISTS}}, [], LEDGER_VERSION))
