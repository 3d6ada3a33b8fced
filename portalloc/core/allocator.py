"""Where the next port pair comes from. Pure functions over a ledger: no I/O, clock or sockets.

A ledger of either representation (``core.shapes``: the models or the plain classes)
gives the same answers; new rows and ledgers are of the kind the ledger is.

Anything impure a caller knows (ports the OS holds, ports pre-configured for other
keys) comes in as ``taken``, so the same ledger and the same ``taken`` always give the
same answer.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from itertools import filterfalse
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from portalloc.core.keys import Key, check_key
from portalloc.core.limits import MAX_PORT, MIN_PORT
from portalloc.core.names import KnownModels
from portalloc.core.policyrules import BAD_PORTS, is_bad_pair, pool_holding, segments_for, usable_pairs
from portalloc.errors import NoFreePair

if TYPE_CHECKING:
    from portalloc.core.models import Allocation, Ledger
    from portalloc.core.shapes import LedgerShape, Row

#: A ledger of either representation; what ``assign_many`` and ``release_many`` return is of its kind.
L = TypeVar("L", bound="LedgerShape")


class Assignment(NamedTuple):
    """What ``assign`` decided for one key."""

    allocation: Row
    created: bool
    #: Why a pre-configured pair was not used, or ``None``.
    note: str | None = None


class _PairFinder:
    """Hands out the lowest free pair (or, ``highest_first``, the highest), again and again, in one pass
    over each segment of the sequence.

    Within one batch ports are only ever added to ``used``, so every pair a segment's
    cursor has passed stays unusable and the search never restarts from its first pair.
    """

    def __init__(
        self, ledger: LedgerShape, taken: Iterable[int], kept: Iterable[int] = (), *, highest_first: bool = False
    ) -> None:
        self.policy = ledger.policy
        self.reserved = self.policy.reserved_ports()
        #: The ledger's ports (not copied: a long-lived ledger's set is shared by every search over it).
        self.held = ledger.used_ports
        #: Ports taken besides the ledger's: ``taken``, then each pair this finder hands out.
        self.used = set(taken)
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
        policy, held, used = self.policy, self.held, self.used
        start, step = policy.backend_start, policy.step
        blocked = self.blocked
        after = -1 if self.highest_first else 1
        for segment in segments_for(policy, model, self.highest_first):
            # filterfalse skips pairs whose backend is taken at C speed: a full ledger of
            # 10,000 pairs is passed in well under a millisecond, not one Python step each.
            free = filterfalse(used.__contains__, filterfalse(held.__contains__, self._candidates(segment)))
            for backend in free:
                k = (backend - start) // step
                frontend = policy.frontend_start + k * step
                if (
                    frontend not in held
                    and frontend not in used
                    and backend not in blocked
                    and frontend not in blocked
                    and not is_bad_pair(policy, backend, frontend)
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
    ledger: LedgerShape, models: Iterable[str], taken: Iterable[int] = (), *, highest_first: bool = False
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
    ledger: L,
    keys: Iterable[Key],
    taken: Iterable[int] = (),
    preferred: Mapping[Key, tuple[int, int]] | None = None,
    *,
    allow_confusable: bool = False,
) -> tuple[L, list[Assignment]]:
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
    added: dict[Key, Row] = {}
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
        allocation = ledger.new_row(model, app_num, backend, frontend)  # of the ledger's kind
        added[(model, app_num)] = allocation
        assignments.append(Assignment(allocation, created=True, note=note))
    if not added:
        return ledger, assignments
    return ledger.with_added(list(added.values())), assignments


def pair_refusal(
    ledger: LedgerShape,
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


def _port_refusal(
    ledger: LedgerShape, key: Key, port: int, taken: Container[int], reserved: frozenset[int]
) -> str | None:
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


def _held_only_by(ledger: LedgerShape, key: Key, port: int) -> bool:
    """Whether ``key`` holds ``port`` and nobody else can: its own, in a ledger where no port is held twice.

    Decided without a scan, so that checking every allocation against a new policy
    stays linear in the ledger's size.
    """
    own = ledger.find(*key)
    return own is not None and port in own.ports and len(ledger.used_ports) == 2 * len(ledger.allocations)


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
