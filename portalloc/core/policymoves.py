"""What a policy change would move under the apps the ledger holds. Pure: no I/O.

A pool is a range of pair indices, so a change of ``step`` or of a start moves its
ports, and an app sitting on a pair of the old sequence can end up off the new one or
outside its own model's pool. Such a change fits (no port is shared, none is out of
range), yet it silently changes what the ledger means; ``policy set`` refuses it unless
told to go ahead (``--force``), and then says what moved.
"""

from __future__ import annotations

from portalloc.core.allocator import pool_strays
from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy

#: How many moves one message names before it says how many more there are.
_SHOWN = 10


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
