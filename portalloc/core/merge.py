"""Three-way merge and repair of ledgers. Pure functions over ``Ledger``: no I/O.

Both come down to one step, ``settle``: walk the allocations in priority order; each
keeps its pair if no allocation before it holds either port, and the ones that lose
a port move, after every keeper is placed, to the lowest free pairs
(``allocator.assign_many``, the same rule as ``portalloc get``). A key is never dropped
by ``settle``; only a release (in a merge) or a second row of the same key removes a row.

* ``merge_ledgers`` (the git merge driver): our side's allocations come first, then
  theirs (keys only they have or only they changed), so ours keep their ports; with
  ``keep_theirs`` (their side is published, ours is not) the order is turned round. A key is merged three ways:
  the side that changed it from ``base`` wins, and only a key both sides changed
  differently is "allocated by both" (ours kept).
* ``repair_ledger``: file order, so the earliest row holding a port keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, cast

from portalloc.core.allocator import assign_many
from portalloc.core.keys import Key
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.core.policymoves import policy_refusals
from portalloc.errors import PolicyMismatch


class Move(NamedTuple):
    """One key whose row changed its pair: ``before`` and ``after`` are rows of the same key.

    ``side`` names the version ``before`` came from in a merge (``"theirs (feature)"``);
    it is empty for a repair, where there is one version.
    """

    before: Allocation
    after: Allocation
    reason: str
    side: str = ""

    def describe(self) -> str:
        """``model/app [of SIDE] from B/F to B/F (reason)``, for a user."""
        return (
            f"{_named(self.before, self.side)} from {self.before.backend}/{self.before.frontend} "
            f"to {self.after.backend}/{self.after.frontend} ({self.reason})"
        )


class Sides(NamedTuple):
    """What a merge's messages call its versions (a branch name may follow: ``"ours (main)"``)."""

    ours: str = "ours"
    theirs: str = "theirs"
    base: str = "base"


#: A merge's sides when nobody names them.
PLAIN_SIDES = Sides()


def _named(allocation: Allocation, side: str) -> str:
    return f"{allocation.label()} of {side}" if side else allocation.label()


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


def settle(template: Ledger, ordered: Sequence[tuple[Allocation, str]]) -> Resolution:
    """A conflict-free ledger (``template``'s policy) holding every key of ``ordered``.

    ``ordered`` holds ``(allocation, side)`` with each key once; ``side`` names where the
    row came from in messages (``""`` for none). Walking it in order, an allocation keeps
    its pair when no earlier keeper holds either port; the others move to the lowest free
    pairs, in the same order. Raises ``NoFreePair`` if the policy cannot hold them all.
    """
    holders: dict[int, tuple[Allocation, str]] = {}
    kept: list[Allocation] = []
    displaced: list[tuple[Allocation, str, int, tuple[Allocation, str]]] = []
    for allocation, side in ordered:
        busy = next((port for port in allocation.ports if port in holders), None)
        if busy is None:
            kept.append(allocation)
            holders[allocation.backend] = holders[allocation.frontend] = (allocation, side)
        else:
            displaced.append((allocation, side, busy, holders[busy]))
    keepers = template.with_allocations(kept)
    if not displaced:
        return Resolution(keepers, [])
    # Keepers are placed first so that a moved key can never take a keeper's port.
    ledger, assignments = assign_many(keepers, [allocation.key for allocation, _, _, _ in displaced])
    # The rows a ``Ledger`` makes are ``Allocation``s (``Ledger.new_row``); the allocator types them by their shape.
    moves = [
        Move(allocation, cast("Allocation", assignment.allocation), f"port {port} is held by {_named(*holder)}", side)
        for (allocation, side, port, holder), assignment in zip(displaced, assignments, strict=True)
    ]
    return Resolution(ledger, moves)


def _duplicate_moves(duplicates: Iterable[Allocation], result: Ledger, side: str) -> list[Move]:
    where = f" in {side}" if side else ""
    moves = []
    for row in duplicates:
        final = result.find(*row.key)
        if final is not None:  # else the key was released, and every row of it with it
            moves.append(Move(row, final, f"{row.label()} is listed twice{where}; its first row is kept", side))
    return moves


def repair_ledger(ledger: Ledger) -> Resolution:
    """Make ``ledger`` conflict-free without dropping a key.

    "Earliest" is order in the file: the first row holding a port keeps it and later
    rows sharing a port move to the lowest free pairs. A key listed twice keeps its
    first row. With nothing to repair the very same ``ledger`` object comes back and
    ``moves`` is empty.
    """
    first, duplicates = _first_rows(ledger.allocations)
    settled = settle(ledger, [(allocation, "") for allocation in first.values()])
    if not duplicates and not settled.moves:
        return Resolution(ledger, [])
    return Resolution(settled.ledger, _duplicate_moves(duplicates, settled.ledger, "") + settled.moves)


def _same(a: Allocation | None, b: Allocation) -> bool:
    return a is not None and a.key == b.key and a.ports == b.ports


def merge_ledgers(
    base: Ledger | None, ours: Ledger, theirs: Ledger, sides: Sides = PLAIN_SIDES, *, keep_theirs: bool = False
) -> Resolution:
    """The three-way merge of a ledger, as the git merge driver does it.

    ``keep_theirs`` gives their side the priority this describes for ours: the driver
    sets it when their side is already published and ours is not (``git pull`` merging
    a pushed allocation into a local one), so the pair that may already be serving
    stays. Everything else is symmetric, so the result is the same union either way.
    """
    if keep_theirs:
        return _merge(base, theirs, ours, Sides(sides.theirs, sides.ours, sides.base))
    return _merge(base, ours, theirs, sides)


def _merge(base: Ledger | None, ours: Ledger, theirs: Ledger, sides: Sides) -> Resolution:
    """The merge with ``ours`` as the side whose pairs stand.

    * The result is the union of both sides' allocations.
    * A key one side released and the other left exactly as in ``base`` stays released.
    * A key whose pair only one side changed from ``base`` takes that side's pair: in a
      rebase, a row the replayed commit did not touch is simply ours.
    * A key both sides changed to different pairs keeps ours (theirs is reported as a
      move, "both sides allocated it").
    * When both sides gave different keys a port, our allocation keeps it and theirs
      moves to the lowest free pair.

    ``base`` is ``None`` when the sides have no common version (git's add/add case):
    nothing was released then. The policy is merged by ``merged_policy`` (one side's
    change is taken; two different changes are ``PolicyMismatch``), and every kept
    allocation must fit it (``PolicyMismatch`` naming the ones that do not). The result
    is conflict-free even if a side was not (our rows are settled first, in our order,
    then theirs). ``sides`` names the versions in the moves' messages. Raises
    ``NoFreePair`` if the merged keys do not fit the policy.
    """
    policy = merged_policy(base, ours, theirs, sides)
    old = base if base is not None else Ledger(policy=policy)
    our_rows, our_duplicates = _first_rows(ours.allocations)
    their_rows, their_duplicates = _first_rows(theirs.allocations)
    kept: list[tuple[Allocation, str]] = []
    # Their rows come after all of ours (a row of theirs never moves one of ours), in our order.
    taken: list[tuple[Allocation, str]] = []
    both_changed: list[Allocation] = []
    for key, allocation in our_rows.items():
        before, their_row = old.find(*key), their_rows.get(key)
        if their_row is None:
            if not _same(before, allocation):  # else released on their side, untouched on ours
                kept.append((allocation, sides.ours))
        elif their_row.ports == allocation.ports or _same(before, their_row):
            kept.append((allocation, sides.ours))  # their side left it alone
        elif _same(before, allocation):
            taken.append((their_row, sides.theirs))  # only their side changed it (a repair, say)
        else:
            kept.append((allocation, sides.ours))
            both_changed.append(their_row)
    for key, allocation in their_rows.items():
        if key in our_rows or _same(old.find(*key), allocation):
            continue  # handled above, or released on our side and untouched on theirs
        taken.append((allocation, sides.theirs))
    settled = settle(ours.model_copy(update={"policy": policy}), kept + taken)
    result = settled.ledger
    _check_fits(result, theirs.policy if policy == ours.policy else ours.policy)
    moves = _duplicate_moves(our_duplicates, result, sides.ours)
    moves += _duplicate_moves(their_duplicates, result, sides.theirs)
    for their_row in both_changed:
        final = result.find(*their_row.key)
        if final is not None:
            moves.append(Move(their_row, final, f"both sides allocated it; {sides.ours} is kept", sides.theirs))
    return Resolution(result, moves + settled.moves)


# --- the policy: reserved ports and pools are part of it -----------------------------------


def merged_policy(base: Ledger | None, ours: Ledger, theirs: Ledger, sides: Sides = PLAIN_SIDES) -> PortPolicy:
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
        f"both sides changed the policy, to different policies ({sides.ours}: {ours.policy.describe()}; "
        f"{sides.theirs}: {theirs.policy.describe()}); merge the policy change by hand"
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
