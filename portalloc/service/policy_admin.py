"""The ledger's policy: creating a ledger with one, changing it, reserved ports and per-model pools.

Every change is made under the ledger lock and only when every allocation still fits
(``policymoves.change_policy``); ``policy set`` also refuses, unless forced, a change that
would move pools or apps (``core.policymoves``). Creating a ledger and changing its
policy warn when the range crosses the OS ephemeral range (``service.hostcapacity``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy, build_policy
from portalloc.core.names import KnownModels
from portalloc.core.pairs import merge_ranges
from portalloc.core.policymoves import change_policy, describe_moves, policy_moves
from portalloc.core.policyrules import reserved_holders
from portalloc.errors import PolicyRefused
from portalloc.service import hostcapacity
from portalloc.service.target import LedgerTarget
from portalloc.storage.ledgerdir import read_bytes

logger = logging.getLogger("portalloc")


class PolicyAdmin:
    """Create the ledger of ``target`` and change its policy (see ``PortAllocationService`` for each call)."""

    def __init__(self, target: LedgerTarget[Ledger]) -> None:
        self.target = target

    def create_ledger(self, policy: PortPolicy) -> Ledger:
        """Create the ledger file with ``policy`` and no allocations; ``LedgerExists`` if there is one."""
        ledger = Ledger(policy=policy)
        self.target.file.create(ledger)
        hostcapacity.warn_if_ephemeral(policy, probing=self.target.probe and policy.probe)
        return ledger

    def set_policy(self, changes: dict[str, object], *, force: bool = False) -> PortPolicy:
        """Change the named policy fields and return the new policy.

        A change that fits but would move a pool, or put an app outside its pool or off
        the sequence (``policymoves.policy_moves``), is refused unless ``force``; then
        each move is a warning on the ``portalloc`` logger.
        """
        moved: list[str] = []

        def check(ledger: Ledger, policy: PortPolicy) -> None:
            moved[:] = policy_moves(ledger, policy)
            if moved and not force:
                raise PolicyRefused(
                    f"the new policy moves what the ledger holds, nothing changed: {describe_moves(moved)} "
                    "(--force to go ahead)"
                )

        policy = self._change_policy(lambda policy: {**policy.model_dump(), **changes}, check)
        for move in moved:
            logger.warning(f"policy changed: {move}")
        hostcapacity.warn_if_ephemeral(policy, probing=self.target.probe and policy.probe)
        return policy

    def reserve(self, ranges: Iterable[tuple[int, int]]) -> list[tuple[Allocation, int]]:
        """Reserve port ranges; return the allocations already on a newly reserved port (with the port)."""
        wanted = list(ranges)
        before: set[int] = set()

        def add(policy: PortPolicy) -> dict[str, object]:
            before.update(policy.reserved_ports())  # as read under the lock: what is newly reserved is ours
            return {**policy.model_dump(), "reserved": merge_ranges([*policy.reserved, *wanted])}

        self._change_policy(add)
        ledger = self.target.file.read()
        return [(a, port) for a, port in reserved_holders(ledger) if port not in before]

    def unreserve(self, ranges: Iterable[tuple[int, int]]) -> PortPolicy:
        """Stop reserving these ports (ports that were not reserved are ignored)."""
        doomed = {port for low, high in ranges for port in range(low, high + 1)}

        def without(policy: PortPolicy) -> dict[str, object]:
            kept = sorted(policy.reserved_ports() - doomed)
            return {**policy.model_dump(), "reserved": merge_ranges((port, port) for port in kept)}

        return self._change_policy(without)

    def add_pool(self, pool: Pool) -> PortPolicy:
        """Give ``pool.model`` its own pairs; refused if they overlap a pool or another model holds one.

        A pool names a model before it has apps: a new name there passes the same door
        as a new allocation's (``names.KnownModels``).
        """
        ledger = self.target.file.read()
        if ledger.policy.pool_of(pool.model) is not None:
            raise PolicyRefused(f"{pool.model} already has a pool; 'portalloc pool remove {pool.model}' first")
        KnownModels(ledger, allow_confusable=self.target.allow_confusable).admit(pool.model)
        return self._change_policy(
            lambda policy: {
                **policy.model_dump(),
                "pools": sorted([*policy.model_dump()["pools"], pool.model_dump()], key=lambda p: p["first"]),
            }
        )

    def remove_pool(self, model_name: str) -> Pool:
        """Remove ``model_name``'s pool (its allocations stay where they are); return it."""
        pool = self.target.file.read().policy.pool_of(model_name)
        if pool is None:
            raise PolicyRefused(f"{model_name} has no pool")
        self._change_policy(
            lambda policy: {**policy.model_dump(), "pools": [p.model_dump() for p in policy.pools if p != pool]}
        )
        return pool

    def _change_policy(
        self,
        change: Callable[[PortPolicy], dict[str, object]],
        check: Callable[[Ledger, PortPolicy], None] | None = None,
    ) -> PortPolicy:
        """Under the lock: build the new policy from the current one, check every allocation fits
        (and ``check`` has nothing against it), write."""
        if read_bytes(self.target.path) is None:  # a policy is changed on a ledger made on purpose, never a new one
            raise self.target.file.missing()

        def update(ledger: Ledger) -> tuple[Ledger, PortPolicy]:
            policy = build_policy(change(ledger.policy))
            changed = change_policy(ledger, policy)
            if check is not None:
                check(ledger, policy)
            return changed, policy

        return self.target.file.update(update)
