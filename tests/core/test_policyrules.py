"""What a policy allows: usable pairs, the pairs it skips and why, and what ``check`` warns about."""

from __future__ import annotations

from portalloc.core import policyrules
from portalloc.core.allocator import assign_many
from portalloc.core.audit import find_conflicts
from portalloc.core.models import Ledger, Pool, PortPolicy
from portalloc.core.policymoves import change_policy


def test_default_policy_holds_1500_pairs_of_which_1494_usable() -> None:
    policy = PortPolicy()
    assert policy.pair_count == 1500
    assert policy.pair(1499) == (7999, 10999)
    assert policyrules.usable_pairs(policy) == 1494


def test_strays_and_reserved_holders_are_warnings() -> None:
    ledger, _ = assign_many(Ledger(), [("a", 1), ("b", 1)])
    ledger = change_policy(ledger, PortPolicy(pools=[Pool(model="a", first=5, last=9)], reserved=[[8003, 8003]]))
    assert policyrules.pool_strays(ledger) == [ledger.find("a", 1)]
    assert policyrules.policy_warnings(ledger) == [
        "a/1 (5001/8001) lies outside the pool of a: pairs 5-9 (overflow shared)",
        "b/1 holds reserved port 8003",
    ]
    assert find_conflicts(ledger.allocations) == []


def test_skipped_pairs_say_why() -> None:
    policy = PortPolicy(reserved=[[8005, 8005]])
    skipped = policyrules.skipped_pairs(policy)
    assert skipped[:2] == [(5005, 8005, "8005 is reserved"), (5061, 8061, "5061 is a port browsers refuse")]
    assert len(skipped) == 7
