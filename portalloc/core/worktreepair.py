"""A linked worktree's own pair (``worktrees: separate``): an ``Allocation`` that says whose it is. No I/O."""

from __future__ import annotations

from portalloc.core.models import Allocation


class WorktreePair(Allocation):  # type: ignore[metaclass]  # Allocation's metaclass is pydantic's, which mypy cannot see
    """The pair a linked git worktree uses for a key under ``worktrees: separate``: its own, never in the ledger.

    ``worktree`` is the worktree's top directory. Everything else is an ``Allocation``'s
    (it unpacks as its ports), so a caller that asked for a pair gets one either way.
    """

    worktree: str

    def label(self) -> str:
        """``model/app_num in worktree /path``."""
        return f"{self.model}/{self.app_num} in worktree {self.worktree}"

    def __repr_name__(self) -> str:
        return "WorktreePair"


def worktree_of(pair: Allocation) -> str | None:
    """The linked worktree whose own pair ``pair`` is, or ``None`` for the ledger's pair."""
    return pair.worktree if isinstance(pair, WorktreePair) else None
