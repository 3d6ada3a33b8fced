"""A policy change: whether it fits the apps the ledger holds, and what it would move under them. Pure: no I/O.

A change that would leave an allocation on a port the new policy refuses (out of
range, a browsers' bad port, another model's pool) is refused (``change_policy``).

A pool is a range of pair indices, so a change of ``step`` or of a start moves its
ports, and an app sitting on a pair of the old sequence can end up off the new one or
outside its own model's pool. Such a change fits (no port is shared, none is out of
range), yet it silently changes what the ledger means; ``policy set`` refuses it unless
told to go ahead (``--force``), and then says what moved.
"""

from __future__ import annotations

from portalloc.core.allocator import pair_refusal
from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy
from portalloc.core.policyrules import pool_strays
from portalloc.errors import PolicyRefused

#: How many moves one message names before it says how many more there are.
_SHOWN = 10


def policy_refusals(ledger: Ledger, policy: PortPolicy) -> list[str]:
    """Every allocation that fits ``ledger``'s policy but would not fit ``policy``: ``model/app (B/F): why``.

    Fitting is ``pair_refusal`` having nothing against it. Reserved ports are left
    out: reserving a port an app holds is allowed (and reported), never a reason to
    refuse. An allocation outside its own model's pool fits, and one that already did
    not fit (a pre-configured pair outside the range, say) is not the change's doing.
    """
    candidate = ledger.model_copy(update={"policy": policy})
    return [
        f"{a.label()} ({a.backend}/{a.frontend}): {why}"
        for a in ledger.allocations
        if (why := pair_refusal(candidate, a.key, a.ports, reserved=frozenset())) is not None
        and pair_refusal(ledger, a.key, a.ports, reserved=frozenset()) is None
    ]


def change_policy(ledger: Ledger, policy: PortPolicy) -> Ledger:
    """``ledger`` under ``policy``; ``PolicyRefused`` naming every allocation that would not fit it."""
    if policy == ledger.policy:
        return ledger
    refusals = policy_refusals(ledger, policy)
    if refusals:
        count = len(refusals)
        raise PolicyRefused(
            f"the new policy does not fit {count} allocation{'s' if count > 1 else ''}, "
            "nothing changed: " + "; ".join(refusals)
        )
    return ledger.model_copy(update={"policy": policy})


def policy_moves(ledger: Ledger, policy: PortPolicy) -> list[str]:
    """Each thing changing ``ledger``'s policy to ``policy`` would move, one line each (empty when none).

    A pool of the same model whose backend ports change; an app that was inside its
    model's pool and would lie outside it; an app on a pair of the sequence that would
    be off the new sequence.
    """
    old = ledger.policy
    moves = []
    for pool in policy.pools:
        before = old.pool_of(pool.model)
        if before is not None and _backends(old, before) != _backends(policy, pool):
            moves.append(
                f"the pool of {pool.model} moves from backends {_backends(old, before)} to {_backends(policy, pool)}"
            )
    strays_before = {a.key for a in pool_strays(ledger)}
    strays_after = {a.key for a in pool_strays(ledger.model_copy(update={"policy": policy}))}
    for a in ledger.allocations:
        if a.key in strays_after and a.key not in strays_before and old.pool_of(a.model) is not None:
            moves.append(f"{_app(a)} leaves the pool of {a.model}")
        elif old.index_of(*a.ports) is not None and policy.index_of(*a.ports) is None:
            moves.append(f"{_app(a)} leaves the sequence of pairs")
    return moves


def describe_moves(moves: list[str]) -> str:
    """``moves`` on one line, the first few named and the rest counted."""
    shown = "; ".join(moves[:_SHOWN])
    return shown + (f"; and {len(moves) - _SHOWN} more" if len(moves) > _SHOWN else "")


def _backends(policy: PortPolicy, pool: Pool) -> str:
    return f"{policy.pair(pool.first)[0]}-{policy.pair(pool.last)[0]}"


def _app(allocation: Allocation) -> str:
    return f"{allocation.label()} ({allocation.backend}/{allocation.frontend})"
