"""Where two versions of a ledger's rows differ: the rows they share at the head and at the tail.

Successive ledgers of one file share their row objects (a write after one allocation
inserts one row into the list it read; a re-read under the lock keeps the rows whose
lines it knows), so what changed between them lies between a common head and a common
tail. The ends are found by identity (``is``), in C (``map(is_not, …)``): about 20 ns a
row, where a Python loop costs ten times that. Identity, not equality: a row equal to
one seen before may have arrived by another way (a ``git pull`` putting back a released
key on its old pair), and only the very row seen carries what was done with it (a line
formatted, a lease recorded).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import compress, count, islice
from operator import is_not


def common_ends(old: Sequence[object], new: Sequence[object]) -> tuple[int, int]:
    """``(head, tail)``: how many leading and how many trailing rows ``old`` and ``new`` share (the same
    objects at the same places from either end), the two never overlapping in either list."""
    shortest = min(len(old), len(new))
    head = _shared(old, new, shortest)
    return head, _shared(reversed(old), reversed(new), shortest - head)


def _shared(old: Iterable[object], new: Iterable[object], limit: int) -> int:
    """How many leading rows of ``old`` and ``new`` are the same objects, up to ``limit``."""
    differs = islice(map(is_not, old, new), limit)
    return next(compress(count(), differs), limit)
