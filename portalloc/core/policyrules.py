"""What a port policy allows, apart from any ledger's choices: which pairs may be handed out, and where.

Pure functions over a policy of either representation (``core.shapes``) and, for the
warnings ``check`` prints, a ``Ledger``: the browsers' bad ports, reserved ports and
pools decide which pairs of the sequence are usable and in which order a model's new
apps look at them. No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portalloc.core.models import Allocation, Ledger
    from portalloc.core.shapes import PolicyShape, PoolShape

#: The WHATWG fetch standard's "bad ports": browsers refuse to connect to them.
BAD_PORTS = frozenset(
    {
        1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95,
        101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161,
        179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563,
        587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060,
        5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
    }
)  # fmt: skip


def policy_span(policy: PolicyShape) -> tuple[int, int]:
    """The lowest and highest port of the policy's sequence (first backend, last frontend)."""
    return policy.backend_start, policy.pair(policy.pair_count - 1)[1]


def is_bad_pair(policy: PolicyShape, backend: int, frontend: int) -> bool:
    """Whether the pair touches a browsers' bad port and the policy skips those."""
    return policy.skip_bad_ports and (backend in BAD_PORTS or frontend in BAD_PORTS)


def usable_pairs(policy: PolicyShape, unusable: frozenset[int] = frozenset()) -> int:
    """How many pairs the policy can hand out (in range, minus pairs touching a bad or reserved port).

    ``unusable``: ports this machine keeps from new allocations (see ``audit.usage``), for the count usable here.
    """
    blocked = policy.reserved_ports() | unusable
    return sum(1 for k in range(policy.pair_count) if is_usable_pair(policy, blocked, k))


def is_usable_pair(policy: PolicyShape, reserved: frozenset[int], k: int) -> bool:
    """Whether pair ``k`` may be handed out at all: no browsers' bad port (if skipped), no ``reserved`` port."""
    backend, frontend = policy.pair(k)
    return not is_bad_pair(policy, backend, frontend) and backend not in reserved and frontend not in reserved


def skipped_pairs(policy: PolicyShape) -> list[tuple[int, int, str]]:
    """The pairs in range that are never handed out: ``(backend, frontend, why)``, in sequence order."""
    reserved = policy.reserved_ports()
    skipped = []
    for k in range(policy.pair_count):
        pair = policy.pair(k)
        bad = [port for port in pair if port in BAD_PORTS] if policy.skip_bad_ports else []
        held = [port for port in pair if port in reserved]
        reasons = [f"{port} is a port browsers refuse" for port in bad] + [f"{port} is reserved" for port in held]
        if reasons:
            skipped.append((*pair, "; ".join(reasons)))
    return skipped


def shared_segments(policy: PolicyShape) -> list[range]:
    """The pair indices outside every pool (the shared range), as runs of consecutive ``k``."""
    segments, start = [], 0
    for pool in policy.pools:  # sorted and apart: the model guarantees it
        if pool.first > start:
            segments.append(range(start, pool.first))
        start = pool.last + 1
    if start < policy.pair_count:
        segments.append(range(start, policy.pair_count))
    return segments


def segments_for(policy: PolicyShape, model: str, highest_first: bool = False) -> list[range]:
    """Where ``model``'s new apps look, in order: its pool, then (unless it must fail) the shared range
    (its last segment first when the search goes ``highest_first``)."""
    pool = policy.pool_of(model)
    shared = shared_segments(policy)[:: -1 if highest_first else 1]
    if pool is None:
        return shared
    own = [range(pool.first, pool.last + 1)]
    return own + shared if pool.overflow == "shared" else own


def pool_holding(policy: PolicyShape, port: int) -> PoolShape | None:
    """The pool one of whose pairs has ``port`` (as backend or frontend), or ``None``."""
    for start in (policy.backend_start, policy.frontend_start):
        k, rest = divmod(port - start, policy.step)
        # Backends lie below frontend_start, so at most one of the two roles can match.
        if rest == 0 and 0 <= k < policy.pair_count:
            pool = next((pool for pool in policy.pools if pool.first <= k <= pool.last), None)
            if pool is not None:
                return pool
    return None


def reserved_holders(ledger: Ledger) -> list[tuple[Allocation, int]]:
    """Allocations holding a reserved port, with the port: they stay, and are reported."""
    reserved = ledger.policy.reserved_ports()
    return [(a, port) for a in ledger.allocations for port in a.ports if port in reserved]


def pool_strays(ledger: Ledger) -> list[Allocation]:
    """Allocations of a pooled model that lie outside its pool: they stay, and ``check`` warns."""
    policy = ledger.policy
    strays = []
    for a in ledger.allocations:
        pool = policy.pool_of(a.model)
        k = policy.index_of(*a.ports) if pool is not None else None
        if pool is not None and (k is None or not pool.first <= k <= pool.last):
            strays.append(a)
    return strays


def policy_warnings(ledger: Ledger) -> list[str]:
    """What ``check`` warns about (not conflicts): apps outside their model's pool, apps on a reserved port."""
    policy = ledger.policy
    warnings = []
    for a in pool_strays(ledger):
        pool = policy.pool_of(a.model)
        assert pool is not None  # a stray is an app of a pooled model
        warnings.append(f"{a.label()} ({a.backend}/{a.frontend}) lies outside the pool of {pool.describe()}")
    warnings += [f"{a.label()} holds reserved port {port}" for a, port in reserved_holders(ledger)]
    return warnings
