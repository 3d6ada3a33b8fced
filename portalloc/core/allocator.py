"""Where the next port pair comes from. Pure functions over a ``Ledger``: no I/O, clock or sockets.

Anything impure a caller knows (ports the OS holds, ports pre-configured for other
keys) comes in as ``taken``, so the same ledger and the same ``taken`` always give the
same answer.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from itertools import filterfalse
from typing import NamedTuple

from portalloc.core.keys import Claim, Key, check_key
from portalloc.core.limits import MAX_PORT, MIN_PORT
from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy
from portalloc.core.names import KnownModels
from portalloc.errors import NoFreePair, PolicyRefused

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


class Assignment(NamedTuple):
    """What ``assign`` decided for one key."""

    allocation: Allocation
    created: bool
    #: Why a pre-configured pair was not used, or ``None``.
    note: str | None = None


class Conflict(NamedTuple):
    """A port held more than once, or a key that appears more than once (``port`` is ``None``)."""

    port: int | None
    holders: tuple[Claim, ...]

    def describe(self) -> str:
        """One line for a user."""
        if self.port is None:
            return f"{self.holders[0].describe()} is allocated {len(self.holders)} times"
        return f"port {self.port} is used by " + " and ".join(holder.describe() for holder in self.holders)


class Usage(NamedTuple):
    """Capacity and use of a ledger, for ``stats``: in the policy, and usable on this machine (``_here``)."""

    allocations: int
    models: int
    capacity: int
    free_pairs: int
    bad_port_pairs: int
    off_sequence: int
    #: Pairs of ``capacity`` with no port this machine keeps from new allocations, and how many are free.
    usable_here: int
    free_here: int


def _is_bad(policy: PortPolicy, backend: int, frontend: int) -> bool:
    return policy.skip_bad_ports and (backend in BAD_PORTS or frontend in BAD_PORTS)


def usable_pairs(policy: PortPolicy, unusable: frozenset[int] = frozenset()) -> int:
    """How many pairs the policy can hand out (in range, minus pairs touching a bad or reserved port).

    ``unusable``: ports this machine keeps from new allocations (see ``usage``), for the count usable here.
    """
    blocked = policy.reserved_ports() | unusable
    return sum(1 for k in range(policy.pair_count) if is_usable_pair(policy, blocked, k))


def is_usable_pair(policy: PortPolicy, reserved: frozenset[int], k: int) -> bool:
    """Whether pair ``k`` may be handed out at all: no browsers' bad port (if skipped), no ``reserved`` port."""
    backend, frontend = policy.pair(k)
    return not _is_bad(policy, backend, frontend) and backend not in reserved and frontend not in reserved


def skipped_pairs(policy: PortPolicy) -> list[tuple[int, int, str]]:
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


def shared_segments(policy: PortPolicy) -> list[range]:
    """The pair indices outside every pool (the shared range), as runs of consecutive ``k``."""
    segments, start = [], 0
    for pool in policy.pools:  # sorted and apart: the model guarantees it
        if pool.first > start:
            segments.append(range(start, pool.first))
        start = pool.last + 1
    if start < policy.pair_count:
        segments.append(range(start, policy.pair_count))
    return segments


def _segments_for(policy: PortPolicy, model: str, highest_first: bool = False) -> list[range]:
    """Where ``model``'s new apps look, in order: its pool, then (unless it must fail) the shared range
    (its last segment first when the search goes ``highest_first``)."""
    pool = policy.pool_of(model)
    shared = shared_segments(policy)[:: -1 if highest_first else 1]
    if pool is None:
        return shared
    own = [range(pool.first, pool.last + 1)]
    return own + shared if pool.overflow == "shared" else own


def pool_holding(policy: PortPolicy, port: int) -> Pool | None:
    """The pool one of whose pairs has ``port`` (as backend or frontend), or ``None``."""
    for start in (policy.backend_start, policy.frontend_start):
        k, rest = divmod(port - start, policy.step)
        # Backends lie below frontend_start, so at most one of the two roles can match.
        if rest == 0 and 0 <= k < policy.pair_count:
            pool = next((pool for pool in policy.pools if pool.first <= k <= pool.last), None)
            if pool is not None:
                return pool
    return None


class _PairFinder:
    """Hands out the lowest free pair (or, ``highest_first``, the highest), again and again, in one pass
    over each segment of the sequence.

    Within one batch ports are only ever added to ``used``, so every pair a segment's
    cursor has passed stays unusable and the search never restarts from its first pair.
    """

    def __init__(
        self, ledger: Ledger, taken: Iterable[int], kept: Iterable[int] = (), *, highest_first: bool = False
    ) -> None:
        self.policy = ledger.policy
        self.reserved = self.policy.reserved_ports()
        self.used = set(ledger.used_ports)
        self.used.update(taken)
        #: Ports kept for pre-configured keys: ``next_pair`` skips them; their own key may take them.
        self.kept = frozenset(kept)
        self.blocked = self.kept | self.reserved
        self.highest_first = highest_first
        #: Per segment (by its first ``k``): the next ``k`` that may still be free, in the search's direction.
        self.cursors: dict[int, int] = {}

    def take(self, ports: Iterable[int]) -> None:
        self.used.update(ports)

    def _candidates(self, segment: range) -> range:
        """The backends of ``segment`` still to look at, in the search's direction."""
        start, step = self.policy.backend_start, self.policy.step
        if self.highest_first:
            top = self.cursors.get(segment.start, segment.stop - 1)
            return range(start + top * step, start + (segment.start - 1) * step, -step)
        first = self.cursors.get(segment.start, segment.start)
        return range(start + first * step, start + segment.stop * step, step)

    def next_pair(self, model: str) -> tuple[int, int]:
        policy, used = self.policy, self.used
        start, step = policy.backend_start, policy.step
        blocked = self.blocked
        after = -1 if self.highest_first else 1
        for segment in _segments_for(policy, model, self.highest_first):
            # filterfalse skips pairs whose backend is taken at C speed: a full ledger of
            # 10,000 pairs is passed in well under a millisecond, not one Python step each.
            for backend in filterfalse(used.__contains__, self._candidates(segment)):
                k = (backend - start) // step
                frontend = policy.frontend_start + k * step
                if (
                    frontend not in used
                    and backend not in blocked
                    and frontend not in blocked
                    and not _is_bad(policy, backend, frontend)
                ):
                    self.cursors[segment.start] = k + after
                    self.take((backend, frontend))
                    return backend, frontend
            self.cursors[segment.start] = segment.start - 1 if self.highest_first else segment.stop
        pool = policy.pool_of(model)
        if pool is not None and pool.overflow == "fail":
            raise NoFreePair(
                f"no free port pair left in the pool of {model} (pairs {pool.first}-{pool.last}), "
                "and its overflow is 'fail'; release some of its apps or widen the pool"
            )
        where = "the shared range of the policy" if policy.pools else "the policy"
        raise NoFreePair(
            f"no free port pair left: none of the {usable_pairs(policy):,} pairs of {where} "
            f"({policy.describe()}) is free; release some or widen the policy"
        )


def free_pairs(
    ledger: Ledger, models: Iterable[str], taken: Iterable[int] = (), *, highest_first: bool = False
) -> list[tuple[int, int]]:
    """A free pair for each of ``models`` (one pair per entry, all different), as ``assign_many`` would
    choose for new keys, without adding them to the ledger; ``highest_first`` searches from the top down.

    For pairs that are not ledger rows (a linked worktree's own, ``service.worktrees``):
    the policy's pools, reserved and bad ports apply as for rows, and the ledger's ports and
    ``taken`` are avoided. ``NoFreePair`` when the policy runs out.
    """
    finder = _PairFinder(ledger, taken, highest_first=highest_first)
    return [finder.next_pair(model) for model in models]


def assign_many(
    ledger: Ledger,
    keys: Iterable[Key],
    taken: Iterable[int] = (),
    preferred: Mapping[Key, tuple[int, int]] | None = None,
    *,
    allow_confusable: bool = False,
) -> tuple[Ledger, list[Assignment]]:
    """Give every key a pair: its existing one, else its preferred one if free, else the lowest free.

    ``taken`` are ports that must not be handed out (held by the OS, say). ``preferred``
    maps keys to pre-configured pairs; until its key is allocated, a preferred pair is
    given to no other key. The policy's reserved ports are never handed out, a pooled
    model takes its pool's pairs first, and no other model takes them. Returns the new
    ledger and one ``Assignment`` per key, in order; a key given twice gets the same pair twice.
    A model new to the ledger must pass ``names.check_new_model`` (``allow_confusable``
    lets a look-alike of an existing model in). Raises ``InvalidKey`` for a key that
    cannot be stored, ``ConfusableName`` for a look-alike and ``NoFreePair`` when the
    policy (or a pool that must not overflow) runs out; then no ledger is returned.
    """
    preferred = preferred or {}
    known = KnownModels(ledger, allow_confusable=allow_confusable)
    kept = (port for key, pair in preferred.items() if ledger.find(*key) is None for port in pair)
    finder = _PairFinder(ledger, taken, kept)
    added: dict[Key, Allocation] = {}
    assignments: list[Assignment] = []
    for key in keys:
        model, app_num = check_key(*key)  # NFC: an NFD spelling finds its model's row
        existing = ledger.find(model, app_num) or added.get((model, app_num))
        if existing is not None:
            assignments.append(Assignment(existing, created=False))
            continue
        known.admit(model)
        note = None
        wanted = preferred.get((model, app_num))
        refusal = (
            pair_refusal(ledger, (model, app_num), wanted, taken=finder.used, outside_policy=True)
            if wanted is not None
            else None
        )
        if wanted is not None and refusal is None:
            backend, frontend = wanted
            finder.take(wanted)
        else:
            if wanted is not None:
                note = f"pre-configured ports {wanted[0]}/{wanted[1]} for {model}/{app_num} cannot be used ({refusal})"
            backend, frontend = finder.next_pair(model)
            if note is not None:
                note += f"; allocated {backend}/{frontend} instead"
        allocation = Allocation.model_construct(model=model, app_num=app_num, backend=backend, frontend=frontend)
        added[(model, app_num)] = allocation
        assignments.append(Assignment(allocation, created=True, note=note))
    if not added:
        return ledger, assignments
    return ledger.with_added(list(added.values())), assignments


def pair_refusal(
    ledger: Ledger,
    key: Key,
    pair: tuple[int, int],
    *,
    taken: Container[int] = frozenset(),
    reserved: frozenset[int] | None = None,
    outside_policy: bool = False,
) -> str | None:
    """Why ``key`` may not hold ``pair`` in ``ledger``, or ``None`` if it may: the one rule for every pair not chosen
    by the allocator itself (pre-configured, imported, kept under a new policy, merged).

    Always refused: the same port twice, a port outside 1024-65535, a browsers' bad port
    (when the policy skips them), a port another key of the ledger holds, a port in
    ``taken`` (held on this machine, or given out earlier in the same batch), a reserved
    port, a port of another model's pool. ``reserved`` defaults to the policy's own
    (a policy change passes none: reserving a held port is reported, not refused).
    ``outside_policy`` is what a pre-configured pair may bypass, and nothing else: the
    policy's backend and frontend ranges (the platform chose those ports itself). A
    pair off the sequence but in range is always allowed.
    """
    policy = ledger.policy
    backend, frontend = pair
    if backend == frontend:
        return f"backend and frontend are both {backend}"
    for port in pair:
        if not MIN_PORT <= port <= MAX_PORT:
            return f"port {port} is not from {MIN_PORT} to {MAX_PORT}"
    if not outside_policy:
        if not policy.backend_start <= backend < policy.frontend_start:
            highest = policy.frontend_start - 1
            return f"backend {backend} is outside the policy's backend range {policy.backend_start}-{highest}"
        if not policy.frontend_start <= frontend <= policy.max_port:
            return (
                f"frontend {frontend} is outside the policy's frontend range {policy.frontend_start}-{policy.max_port}"
            )
    reserved = policy.reserved_ports() if reserved is None else reserved
    for port in pair:
        why = _port_refusal(ledger, key, port, taken, reserved)
        if why is not None:
            return why
    return None


def _port_refusal(ledger: Ledger, key: Key, port: int, taken: Container[int], reserved: frozenset[int]) -> str | None:
    """Why ``key`` may not hold ``port`` (one port of ``pair_refusal``'s rule), or ``None``."""
    policy = ledger.policy
    if policy.skip_bad_ports and port in BAD_PORTS:
        return f"{port} is a port browsers refuse to connect to (the policy skips them)"
    if port in reserved:
        return f"port {port} is reserved"
    if port in ledger.used_ports and not _held_only_by(ledger, key, port):
        for holder in ledger.allocations:
            if holder.key != key and port in holder.ports:
                role = "backend" if holder.backend == port else "frontend"
                return f"port {port} is held by {holder.label()} ({role})"
    if port in taken and port not in ledger.used_ports:
        return f"port {port} is already in use"
    pool = pool_holding(policy, port) if policy.pools else None
    if pool is not None and pool.model != key[0]:
        return f"port {port} is in the pool of {pool.model}"
    return None


def _held_only_by(ledger: Ledger, key: Key, port: int) -> bool:
    """Whether ``key`` holds ``port`` and nobody else can: its own, in a ledger where no port is held twice.

    Decided without a scan, so that checking every allocation against a new policy
    stays linear in the ledger's size.
    """
    own = ledger.find(*key)
    return own is not None and port in own.ports and len(ledger.used_ports) == 2 * len(ledger.allocations)


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


def release(ledger: Ledger, model: str, app_num: int) -> tuple[Ledger, list[Allocation]]:
    """Remove every allocation of ``(model, app_num)``; return the new ledger and what was removed."""
    return release_many(ledger, [(model, app_num)])


def release_many(ledger: Ledger, keys: Iterable[Key]) -> tuple[Ledger, list[Allocation]]:
    """Remove every allocation of each key; return the new ledger and what was removed."""
    doomed = set(keys)
    removed = [a for a in ledger.allocations if a.key in doomed]
    if not removed:
        return ledger, []
    return ledger.with_allocations(a for a in ledger.allocations if a.key not in doomed), removed


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


def find_conflicts(allocations: Iterable[Allocation]) -> list[Conflict]:
    """Every port held more than once (in any role) and every key that appears more than once."""
    holders: dict[int, list[Claim]] = {}
    seen: dict[Key, int] = {}
    for a in allocations:
        seen[a.key] = seen.get(a.key, 0) + 1
        holders.setdefault(a.backend, []).append(Claim(a.model, a.app_num, "backend"))
        holders.setdefault(a.frontend, []).append(Claim(a.model, a.app_num, "frontend"))
    conflicts = [Conflict(None, (Claim(*key, None),) * count) for key, count in seen.items() if count > 1]
    conflicts += [Conflict(port, tuple(names)) for port, names in sorted(holders.items()) if len(names) > 1]
    return conflicts


def usage(ledger: Ledger, unusable: frozenset[int] = frozenset()) -> Usage:
    """Counts for ``stats``: allocations, models, usable pairs (not bad, not reserved), free pairs and more.

    ``unusable`` are the ports this machine keeps from new allocations (gathered by the
    caller: the OS ephemeral range, its reserved ports); ``usable_here`` and
    ``free_here`` count the pairs that touch none of them.
    """
    policy = ledger.policy
    used = ledger.used_ports
    reserved = policy.reserved_ports()
    capacity = free = bad = usable_here = free_here = 0
    for k in range(policy.pair_count):
        pair = policy.pair(k)
        if _is_bad(policy, *pair):
            bad += 1
            continue
        if pair[0] in reserved or pair[1] in reserved:
            continue
        capacity += 1
        is_free = pair[0] not in used and pair[1] not in used
        free += is_free
        if pair[0] not in unusable and pair[1] not in unusable:
            usable_here += 1
            free_here += is_free
    return Usage(
        allocations=len(ledger.allocations),
        models=len({a.model for a in ledger.allocations}),
        capacity=capacity,
        free_pairs=free,
        bad_port_pairs=bad,
        off_sequence=sum(1 for a in ledger.allocations if policy.index_of(*a.ports) is None),
        usable_here=usable_here,
        free_here=free_here,
    )
