"""A policy change: the allocations it would not fit, named, and the refusal that changes nothing."""

from __future__ import annotations

import pytest

from portalloc.core.allocator import assign_many
from portalloc.core.models import Ledger, Pool, PortPolicy
from portalloc.core.policymoves import change_policy, policy_refusals
from portalloc.errors import PolicyRefused


def test_policy_refusals_name_every_allocation_that_would_not_fit() -> None:
    ledger, _ = assign_many(Ledger(), [("a", 1), ("b", 1), ("c", 1)])  # 5001, 5003, 5005
    narrower = PortPolicy(backend_start=5003)
    assert policy_refusals(ledger, narrower) == [
        "a/1 (5001/8001): backend 5001 is outside the policy's backend range 5003-8000"
    ]
    pool_over_b = PortPolicy(pools=[Pool(model="a", first=0, last=1)])
    assert policy_refusals(ledger, pool_over_b) == ["b/1 (5003/8003): port 5003 is in the pool of a"]
    # Reserving a held port is no refusal (it is reported instead), nor is an app outside its own pool.
    assert policy_refusals(ledger, PortPolicy(reserved=[[5001, 5001]])) == []
    assert policy_refusals(ledger, PortPolicy(pools=[Pool(model="c", first=5, last=9)])) == []
    with pytest.raises(PolicyRefused, match="does not fit 1 allocation, nothing changed: a/1"):
        change_policy(ledger, narrower)
