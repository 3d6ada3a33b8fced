"""What a change does to a ledger, for the person reviewing it. Pure: two ``Ledger``s in, a ``LedgerDiff`` out.

``portalloc diff`` reads the two versions from git (``portalloc.integrations.history``); ``history``
uses the same comparison between consecutive commits.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from portalloc.core.allocator import pair_refusal
from portalloc.core.audit import Conflict, find_conflicts
from portalloc.core.models import Allocation, Ledger


class PairChange(NamedTuple):
    """A key that holds a different pair after the change."""

    before: Allocation
    after: Allocation


class PolicyChange(NamedTuple):
    """One policy setting whose value changed."""

    setting: str
    before: Any
    after: Any


class LedgerDiff(NamedTuple):
    """Allocations added, released and moved; policy settings changed; what is wrong afterwards.

    ``conflicts`` are every conflict the new ledger holds, ``new_conflicts`` the ones the
    old ledger did not have; ``off_policy`` are allocations the new policy would refuse
    (``allocator.pair_refusal`` against the policy alone), with the reason: the added and
    moved ones, or every one when the policy changed.
    """

    added: list[Allocation]
    released: list[Allocation]
    moved: list[PairChange]
    policy: list[PolicyChange]
    conflicts: list[Conflict]
    new_conflicts: list[Conflict]
    off_policy: list[tuple[Allocation, str]]

    @property
    def changed(self) -> bool:
        """Whether the change touches allocations or the policy at all."""
        return bool(self.added or self.released or self.moved or self.policy)


def _rows(ledger: Ledger) -> dict[tuple[str, int], Allocation]:
    rows: dict[tuple[str, int], Allocation] = {}
    for allocation in ledger.allocations:
        rows.setdefault(allocation.key, allocation)  # first occurrence, as Ledger.find sees it
    return rows


def compare(before: Ledger, after: Ledger) -> LedgerDiff:
    """How ``after`` differs from ``before``, and what conflicts and policy problems ``after`` has."""
    old, new = _rows(before), _rows(after)
    added = [a for key, a in new.items() if key not in old]
    released = [a for key, a in old.items() if key not in new]
    moved = [PairChange(old[key], a) for key, a in new.items() if key in old and old[key].ports != a.ports]
    old_policy, new_policy = before.policy.model_dump(), after.policy.model_dump()
    policy = [
        PolicyChange(setting, old_policy.get(setting), value)
        for setting, value in new_policy.items()
        if old_policy.get(setting) != value
    ]
    conflicts = find_conflicts(after.allocations)
    known = set(find_conflicts(before.allocations))
    bare = Ledger(policy=after.policy)  # the policy alone: conflicts are reported above, not twice
    # A policy change can strand rows nobody touched, so then every row is looked at.
    candidates = list(new.values()) if policy else [*added, *(m.after for m in moved)]
    off_policy = [
        (allocation, reason)
        for allocation in sorted(candidates, key=lambda a: a.key)
        if (reason := pair_refusal(bare, allocation.key, allocation.ports)) is not None
    ]
    return LedgerDiff(
        added=sorted(added, key=lambda a: a.key),
        released=sorted(released, key=lambda a: a.key),
        moved=sorted(moved, key=lambda m: m.after.key),
        policy=policy,
        conflicts=conflicts,
        new_conflicts=[c for c in conflicts if c not in known],
        off_policy=off_policy,
    )
