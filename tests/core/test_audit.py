"""The audit of a ledger: ports held twice, duplicate keys, and the counts ``stats`` reports."""

from __future__ import annotations

from portalloc.core.allocator import assign_many
from portalloc.core.audit import Usage, find_conflicts, usage
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.core.policyrules import usable_pairs


def test_find_conflicts_reports_shared_ports_in_any_role_and_duplicate_keys() -> None:
    rows = [
        Allocation(model="a", app_num=1, backend=5001, frontend=8001),
        Allocation(model="b", app_num=1, backend=8001, frontend=8003),
        Allocation(model="a", app_num=1, backend=5005, frontend=8005),
    ]
    conflicts = find_conflicts(rows)
    described = [c.describe() for c in conflicts]
    assert described == [
        "a/1 is allocated 2 times",
        "port 8001 is used by a/1 (frontend) and b/1 (backend)",
    ]


def test_usage_counts() -> None:
    ledger, _ = assign_many(Ledger(), [("a", 1), ("a", 2), ("b", 1)])
    ledger = ledger.with_allocations(
        [*ledger.allocations, Allocation(model="c", app_num=1, backend=6002, frontend=9002)]
    )
    result = usage(ledger)
    assert result == Usage(
        allocations=4,
        models=3,
        capacity=1494,
        free_pairs=1491,
        bad_port_pairs=6,
        off_sequence=1,
        usable_here=1494,
        free_here=1491,
    )


def test_usage_here_leaves_out_the_ports_this_machine_keeps() -> None:
    """A policy across an ephemeral range of 32768-60999: the pairs touching it are not usable here."""
    policy = PortPolicy(backend_start=10001, frontend_start=30001, step=1, max_port=49999)
    unusable = frozenset(range(32768, 61000))
    ledger, _ = assign_many(Ledger(policy=policy), [("m", n) for n in range(1, 11)], unusable)
    result = usage(ledger, unusable)
    assert (result.capacity, result.free_pairs) == (19_998, 19_988)
    # Frontends 32768-49999 are ephemeral: pairs 2,767 to 19,998 are not usable here.
    assert (result.usable_here, result.free_here) == (2_766, 2_756)
    assert usable_pairs(policy, unusable) == 2_766
    assert usage(ledger) == result.model_copy(update={"usable_here": 19_998, "free_here": 19_988})
