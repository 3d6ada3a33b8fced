"""Where the next port pair comes from. Pure functions over a ``Ledger``: no I/O, clock or sockets.

Anything impure a caller knows (ports the OS holds, ports pre-configured for other
keys) comes in as ``taken``, so the same ledger and the same ``taken`` always give the
same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import filterfalse
from typing import NamedTuple

from portalloc.errors import NoFreePair
from portalloc.keys import check_key
from portalloc.models import Allocation, Ledger, PortPolicy

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

Key = tuple[str, int]


class Assignment(NamedTuple):
    """What ``assign`` decided for one key."""

    allocation: Allocation
    created: bool
    #: Why a pre-configured pair was not used, or ``None``.
    note: str | None = None


class Conflict(NamedTuple):
    """A port held more than once, or a key that appears more than once."""

    port: int | None
    holders: tuple[str, ...]

    def describe(self) -> str:
        """One line for a user."""
        if self.port is None:
            return f"{self.holders[0]} is allocated {len(self.holders)} times"
        return f"port {self.port} is used by " + " and ".join(self.holders)


class Usage(NamedTuple):
    """Capacity and use of a ledger, for ``stats``."""

    allocations: int
    models: int
    capacity: int
    free_pairs: int
    bad_port_pairs: int
    off_sequence: int


def _is_bad(policy: PortPolicy, backend: int, frontend: int) -> bool:
    return policy.skip_bad_ports and (backend in BAD_PORTS or frontend in BAD_PORTS)


def usable_pairs(policy: PortPolicy) -> int:
    """How many pairs the policy can hand out (in range, minus pairs touching a bad port)."""
    return sum(1 for k in range(policy.pair_count) if not _is_bad(policy, *policy.pair(k)))


class _PairFinder:
    """Hands out the lowest free pair, again and again, in one pass over the sequence.

    Within one batch ports are only ever added to ``used``, so every pair below the
    cursor stays unusable and the search never restarts from pair 0.
    """

    def __init__(self, ledger: Ledger, taken: Iterable[int], reserved: Iterable[int] = ()) -> None:
        self.policy = ledger.policy
        self.used = set(ledger.used_ports)
        self.used.update(taken)
        #: Ports kept for pre-configured keys: ``next_pair`` skips them, ``is_free`` does not.
        self.reserved = frozenset(reserved)
        self.cursor = 0

    def take(self, ports: Iterable[int]) -> None:
        self.used.update(ports)

    def is_free(self, backend: int, frontend: int) -> bool:
        return backend != frontend and backend not in self.used and frontend not in self.used

    def next_pair(self) -> tuple[int, int]:
        policy, used = self.policy, self.used
        start, step = policy.backend_start, policy.step
        backends = range(start + self.cursor * step, start + policy.pair_count * step, step)
        # filterfalse skips pairs whose backend is taken at C speed: a full ledger of
        # 10,000 pairs is passed in well under a millisecond, not one Python step each.
        for backend in filterfalse(used.__contains__, backends):
            k = (backend - start) // step
            frontend = policy.frontend_start + k * step
            if (
                self.is_free(backend, frontend)
                and backend not in self.reserved
                and frontend not in self.reserved
                and not _is_bad(policy, backend, frontend)
            ):
                self.cursor = k + 1
                self.take((backend, frontend))
                return backend, frontend
        self.cursor = policy.pair_count
        raise NoFreePair(
            f"no free port pair left: none of the {usable_pairs(policy):,} pairs of the policy "
            f"({policy.describe()}) is free; release some or widen the policy"
        )


def assign_many(
    ledger: Ledger,
    keys: Iterable[Key],
    taken: Iterable[int] = (),
    preferred: Mapping[Key, tuple[int, int]] | None = None,
) -> tuple[Ledger, list[Assignment]]:
    """Give every key a pair: its existing one, else its preferred one if free, else the lowest free.

    ``taken`` are ports that must not be handed out (held by the OS, say). ``preferred``
    maps keys to pre-configured pairs; until its key is allocated, a preferred pair is
    given to no other key. Returns the new ledger and
    one ``Assignment`` per key, in order; a key given twice gets the same pair twice.
    Raises ``InvalidKey`` for a key that cannot be stored and ``NoFreePair`` when the
    policy runs out; either way no ledger is returned.
    """
    preferred = preferred or {}
    reserved = (port for key, pair in preferred.items() if ledger.find(*key) is None for port in pair)
    finder = _PairFinder(ledger, taken, reserved)
    added: dict[Key, Allocation] = {}
    assignments: list[Assignment] = []
    for key in keys:
        model, app_num = check_key(*key)  # NFC: an NFD spelling finds its model's row
        existing = ledger.find(model, app_num) or added.get((model, app_num))
        if existing is not None:
            assignments.append(Assignment(existing, created=False))
            continue
        note = None
        wanted = preferred.get((model, app_num))
        if wanted is not None and finder.is_free(*wanted):
            backend, frontend = wanted
            finder.take(wanted)
        else:
            if wanted is not None:
                busy = " and ".join(str(port) for port in wanted if port in finder.used) or "the pair"
                note = (
                    f"pre-configured ports {wanted[0]}/{wanted[1]} for {model}/{app_num} "
                    f"are not free ({busy} already in use)"
                )
            backend, frontend = finder.next_pair()
            if note is not None:
                note += f"; allocated {backend}/{frontend} instead"
        allocation = Allocation.model_construct(model=model, app_num=app_num, backend=backend, frontend=frontend)
        added[(model, app_num)] = allocation
        assignments.append(Assignment(allocation, created=True, note=note))
    if not added:
        return ledger, assignments
    return ledger.with_added(list(added.values())), assignments


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


def find_conflicts(allocations: Iterable[Allocation]) -> list[Conflict]:
    """Every port held more than once (in any role) and every key that appears more than once."""
    holders: dict[int, list[str]] = {}
    seen: dict[Key, int] = {}
    for allocation in allocations:
        seen[allocation.key] = seen.get(allocation.key, 0) + 1
        holders.setdefault(allocation.backend, []).append(f"{allocation.label()} (backend)")
        holders.setdefault(allocation.frontend, []).append(f"{allocation.label()} (frontend)")
    conflicts = [
        Conflict(None, (f"{model}/{app_num}",) * count) for (model, app_num), count in seen.items() if count > 1
    ]
    conflicts += [Conflict(port, tuple(names)) for port, names in sorted(holders.items()) if len(names) > 1]
    return conflicts


def usage(ledger: Ledger) -> Usage:
    """Counts for ``stats``: allocations, models, usable pairs, free pairs and more."""
    policy = ledger.policy
    used = ledger.used_ports
    capacity = free = bad = 0
    on_sequence: set[tuple[int, int]] = set()
    for k in range(policy.pair_count):
        pair = policy.pair(k)
        if _is_bad(policy, *pair):
            bad += 1
            continue
        capacity += 1
        on_sequence.add(pair)
        if pair[0] not in used and pair[1] not in used:
            free += 1
    return Usage(
        allocations=len(ledger.allocations),
        models=len({a.model for a in ledger.allocations}),
        capacity=capacity,
        free_pairs=free,
        bad_port_pairs=bad,
        off_sequence=sum(1 for a in ledger.allocations if a.ports not in on_sequence),
    )


def pair_refusal(ledger: Ledger, key: Key, pair: tuple[int, int]) -> str | None:
    """Why ``key`` may not hold ``pair`` in ``ledger``, or ``None`` when it may.

    The one rule for a pair that comes from outside the allocator (an import): it must
    lie in the policy's ranges (backend below ``frontend_start``, frontend up to
    ``max_port``), avoid the browsers' bad ports when the policy skips them, and use no
    port another key of the ledger holds, in either role. The key's own row does not
    count against it, so a row that is already there is not refused.
    """
    policy = ledger.policy
    backend, frontend = pair
    if backend == frontend:
        return f"backend and frontend are both {backend}"
    if not policy.backend_start <= backend < policy.frontend_start:
        highest = policy.frontend_start - 1
        return f"backend {backend} is outside the policy's backend range {policy.backend_start}-{highest}"
    if not policy.frontend_start <= frontend <= policy.max_port:
        return f"frontend {frontend} is outside the policy's frontend range {policy.frontend_start}-{policy.max_port}"
    if _is_bad(policy, backend, frontend):
        bad = " and ".join(str(port) for port in pair if port in BAD_PORTS)
        return f"{bad} is a port browsers refuse to connect to (the policy skips them)"
    if backend not in ledger.used_ports and frontend not in ledger.used_ports:
        return None
    held = [
        f"port {port} is held by {allocation.label()} ({role})"
        for port in pair
        for allocation in ledger.allocations
        if allocation.key != key
        for role, own in (("backend", allocation.backend), ("frontend", allocation.frontend))
        if own == port
    ]
    return "; ".join(held) or None
