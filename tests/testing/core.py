"""Shorthands for the pure allocator's tests."""

from __future__ import annotations

from collections.abc import Iterable

from portalloc.core.allocator import Assignment, assign_many
from portalloc.core.models import Ledger


def assign(
    ledger: Ledger,
    model: str,
    app_num: int,
    taken: Iterable[int] = (),
    preferred: tuple[int, int] | None = None,
) -> tuple[Ledger, Assignment]:
    """``assign_many`` for one key."""
    new_ledger, (assignment,) = assign_many(
        ledger, [(model, app_num)], taken, {(model, app_num): preferred} if preferred else None
    )
    return new_ledger, assignment
