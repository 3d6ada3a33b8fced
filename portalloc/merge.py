"""Three-way merge and repair of ledgers. Pure functions over ``Ledger``: no I/O.

Both come down to one step, ``settle``: walk the allocations in priority order; each
keeps its pair if no allocation before it holds either port, and the ones that lose
a port move, after every keeper is placed, to the lowest free pairs
(``allocator.assign_many``, the same rule as ``portalloc get``). A key is never dropped
by ``settle``; only a release (in a merge) or a second row of the same key removes a row.

* ``merge_ledgers`` (the git merge driver): our side's allocations come first, then
  the ones only their side has, so ours keep their ports.
* ``repair_ledger``: file order, so the earliest row holding a port keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from portalloc.allocator import Key, assign_many, policy_refusals
from portalloc.errors import PolicyMismatch
from portalloc.models import Allocation, Ledger, PortPolicy


class Move(NamedTuple):
    """One key whose row changed its pair: ``before`` and ``after`` are rows of the same key."""

    before: Allocation
    after: Allocation
    reason: str

    def describe(self) -> str:
        """``model/app from B/F to B/F (reason)``, for a user."""
        return (
            f"{self.before.label()} from {self.before.backend}/{self.before.frontend} "
            f"to {self.after.backend}/{self.after.frontend} ({self.reason})"
        )


class Resolution(NamedTuple):
    """The ledger a merge or repair produced and every row that moved on the way."""

    ledger: Ledger
    moves: list[Move]


def _first_rows(allocations: Iterable[Allocation]) -> tuple[dict[Key, Allocation], list[Allocation]]:
    """Each key's first row (in order), and the later rows of keys already seen."""
    first: dict[Key, Allocation] = {}
    later: list[Allocation] = []
    for allocation in allocations:
        if allocation.key in first:
            later.append(allocation)
        else:
            first[allocation.key] = allocation
    return first, later


def settle(template: Ledger, ordered: Sequence[Allocation]) -> Resolution:
    """A conflict-free ledger (``template``'s policy) holding every key of ``ordered``.

    ``ordered`` must hold each key once. Walking it in order, an allocation keeps its
    pair when no earlier keeper holds either port; the others move to the lowest free
    pairs, in the same order. Raises ``NoFreePair`` if the policy cannot hold them all.
    """
    holders: dict[int, Allocation] = {}
    kept: list[Allocation] = []
    displaced: list[tuple[Allocation, int, Allocation]] = []
    for allocation in ordered:
        busy = next((port for port in allocation.ports if port in holders), None)
        if busy is None:
            kept.append(allocation)
            holders[allocation.backend] = holders[allocation.frontend] = allocation
        else:
            displaced.append((allocation, busy, holders[busy]))
    keepers = template.with_allocations(kept)
    if not displaced:
        return Resolution(keepers, [])
    # Keepers are placed first so that a moved key can never take a keeper's port.
    ledger, assignments = assign_many(keepers, [allocation.key for allocation, _, _ in displaced])
    moves = [
        Move(allocation, assignment.allocation, f"port {port} is held by {holder.label()}")
        for (allocation, port, holder), assignment in zip(displaced, assignments, strict=True)
    ]
    return Resolution(ledger, moves)


def _duplicate_moves(duplicates: Iterable[Allocation], result: Ledger, where: str) -> list[Move]:
    moves = []
    for row in duplicates:
        final = result.find(*row.key)
        if final is not None:  # else the key was released, and every row of it with it
            moves.append(Move(row, final, f"{row.label()} is listed twice{where}; its first row is kept"))
    return moves


def repair_ledger(ledger: Ledger) -> Resolution:
    """Make ``ledger`` conflict-free without dropping a key.

    "Earliest" is order in the file: the first row holding a port keeps it and later
    rows sharing a port move to the lowest free pairs. A key listed twice keeps its
    first row. With nothing to repair the very same ``ledger`` object comes back and
    ``moves`` is empty.
    """
    first, duplicates = _first_rows(ledger.allocations)
    settled = settle(ledger, list(first.values()))
    if not duplicates and not settled.moves:
        return Resolution(ledger, [])
    return Resolution(settled.ledger, _duplicate_moves(duplicates, settled.ledger, "") + settled.moves)


def _same(a: Allocation | None, b: Allocation) -> bool:
    return a is not None and a.key == b.key and a.ports == b.ports


def merge_ledgers(base: Ledger | None, ours: Ledger, theirs: Ledger) -> Resolution:
    """The three-way merge of a ledger, as the git merge driver does it.

    * The result is the union of both sides' allocations.
    * A key one side released and the other left exactly as in ``base`` stays released.
    * A key both sides hold keeps our pair (theirs is reported as a move).
    * When both sides gave different keys a port, our allocation keeps it and theirs
      moves to the lowest free pair.

    ``base`` is ``None`` when the sides have no common version (git's add/add case):
    nothing was released then. The policy is merged by ``merged_policy`` (one side's
    change is taken; two different changes are ``PolicyMismatch``), and every kept
    allocation must fit it (``PolicyMismatch`` naming the ones that do not). The result is conflict-free even if a side
    was not (their rows are settled in our order, then theirs). Raises ``NoFreePair``
    if the merged keys do not fit the policy.
    """
    policy = merged_policy(base, ours, theirs)
    old = base if base is not None else Ledger(policy=policy)
    our_rows, our_duplicates = _first_rows(ours.allocations)
    their_rows, their_duplicates = _first_rows(theirs.allocations)
    candidates: list[Allocation] = []
    for key, allocation in our_rows.items():
        if key not in their_rows and _same(old.find(*key), allocation):
            continue  # released on their side, untouched on ours
        candidates.append(allocation)
    for key, allocation in their_rows.items():
        if key in our_rows or _same(old.find(*key), allocation):
            continue  # ours wins a key both hold; the other case was released on our side
        candidates.append(allocation)
    settled = settle(ours.model_copy(update={"policy": policy}), candidates)
    result = settled.ledger
    _check_fits(result, theirs.policy if policy == ours.policy else ours.policy)
    moves = _duplicate_moves(our_duplicates, result, " in ours")
    moves += _duplicate_moves(their_duplicates, result, " in theirs")
    for key, theirs_row in their_rows.items():
        ours_row = our_rows.get(key)
        final = result.find(*key)
        if ours_row is not None and ours_row.ports != theirs_row.ports and final is not None:
            moves.append(Move(theirs_row, final, "both sides allocated it; ours is kept"))
    return Resolution(result, moves + settled.moves)


# --- the policy: reserved ports and pools are part of it -----------------------------------


def merged_policy(base: Ledger | None, ours: Ledger, theirs: Ledger) -> PortPolicy:
    """The policy of a merge: the sides' if equal, else the one side's that changed it from ``base``.

    Both sides changing it (ranges, reserved ports or pools) in different ways is not
    guessed at: ``PolicyMismatch`` names both versions.
    """
    if ours.policy == theirs.policy:
        return ours.policy
    if base is not None and base.policy == ours.policy:
        return theirs.policy
    if base is not None and base.policy == theirs.policy:
        return ours.policy
    raise PolicyMismatch(
        f"both sides changed the policy, to different policies (ours: {ours.policy.describe()}; "
        f"theirs: {theirs.policy.describe()}); merge the policy change by hand"
    )


def _check_fits(result: Ledger, unchanged: PortPolicy) -> None:
    """Refuse a merge whose allocations fit the side that kept the policy but not the merged policy.

    That is one side pooling (or moving) pairs that the other side handed out meanwhile.
    """
    if unchanged == result.policy:
        return
    refusals = policy_refusals(result.model_copy(update={"policy": unchanged}), result.policy)
    if refusals:
        raise PolicyMismatch(
            f"the merged allocations do not fit the merged policy ({result.policy.describe()}): "
            + "; ".join(refusals)
            + "; merge by hand"
        )
