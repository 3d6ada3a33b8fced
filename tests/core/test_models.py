"""The pydantic models: policy arithmetic and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy, describe_ranges, merge_ranges
from portalloc.errors import InvalidValue


def test_default_policy_pairs() -> None:
    policy = PortPolicy()
    assert (policy.pair(0), policy.pair(1), policy.pair(2)) == ((5001, 8001), (5003, 8003), (5005, 8005))
    assert policy.pair_count == 1500


@pytest.mark.parametrize(
    ("kwargs", "count"),
    [
        ({"backend_start": 5000, "frontend_start": 5010, "step": 3}, 4),  # 5000 5003 5006 5009
        ({"backend_start": 60000, "frontend_start": 65530, "step": 2}, 3),  # frontends 65530 65532 65534
        ({"backend_start": 20000, "frontend_start": 40000, "step": 1, "max_port": 40009}, 10),
    ],
)
def test_pair_count(kwargs: dict[str, int], count: int) -> None:
    policy = PortPolicy(**kwargs)
    assert policy.pair_count == count
    backend, frontend = policy.pair(count - 1)
    assert backend < policy.frontend_start and frontend <= policy.max_port


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step": 0},
        {"backend_start": 80},
        {"max_port": 70000},
        {"backend_start": 9000, "frontend_start": 8001},
        {"frontend_start": 9000, "max_port": 8999},
        {"step": "2"},
    ],
)
def test_invalid_policies(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidValue, match=r"^invalid PortPolicy: "):  # the API's error, one line
        PortPolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):  # the reader's way in keeps pydantic's, with the field's path
        PortPolicy.model_validate(kwargs)


def test_allocation_validation() -> None:
    assert Allocation(model="m", app_num=1, backend=5001, frontend=8001).label() == "m/1"
    for bad in (
        {"backend": 5001, "frontend": 5001},
        {"backend": 80, "frontend": 8001},
        {"backend": 5001, "frontend": 65536},
    ):
        with pytest.raises(InvalidValue, match=r"^invalid PortPair: "):
            Allocation(model="m", app_num=1, **bad)


def test_ledger_find_and_used_ports() -> None:
    ledger = Ledger().with_allocations(
        [
            Allocation(model="b", app_num=1, backend=5003, frontend=8003),
            Allocation(model="a", app_num=1, backend=5001, frontend=8001),
        ]
    )
    assert [a.model for a in ledger.allocations] == ["a", "b"]
    found = ledger.find("b", 1)
    assert found is not None and found.ports == (5003, 8003)
    assert ledger.find("b", 2) is None
    assert ledger.used_ports == {5001, 8001, 5003, 8003}


def test_a_key_held_twice_is_found_where_a_reader_of_the_file_meets_it_first() -> None:
    """A hand-merged ledger may hold a key twice (``check`` reports it); ``find`` answers with its first row."""
    first, second = (Allocation(model="a", app_num=1, backend=port, frontend=port + 3000) for port in (5003, 5001))
    other = Allocation(model="b", app_num=1, backend=5005, frontend=8005)
    ledger = Ledger.model_construct(policy=PortPolicy(), allocations=[first, other, second])
    assert ledger.find("a", 1) is first
    assert ledger.find("b", 1) is other


# --- reserved ports and pools -----------------------------------------------------------


def test_merge_ranges_sorts_and_joins_touching_and_overlapping_ranges() -> None:
    assert merge_ranges([(9229, 9240), (6379, 6379), (9241, 9250), (6378, 6379), (5173, 5173)]) == [
        [5173, 5173],
        [6378, 6379],
        [9229, 9250],
    ]
    assert describe_ranges([[5173, 5173], [9229, 9250]]) == "5173, 9229-9250"
    assert describe_ranges([]) == "none"


def test_reserved_ports_are_built_once_per_policy() -> None:
    # An import asks for them once per row: rebuilding 64,512 ports per row made 30,000
    # rows take 70 s against a policy that reserves 1024-65535.
    policy = PortPolicy(reserved=[[1024, 65535]])
    ports = policy.reserved_ports()
    assert len(ports) == 65535 - 1024 + 1 and 1024 in ports and 65535 in ports
    assert policy.reserved_ports() is ports
    assert PortPolicy(reserved=[[6379, 6379]]).reserved_ports() == {6379}
    assert PortPolicy(reserved=[[6379, 6379]]) == PortPolicy(reserved=[[6379, 6379]]).model_copy()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reserved": [[6379, 6378]]}, "sorted, apart"),
        ({"reserved": [[6379, 6380], [6381, 6390]]}, "sorted, apart"),  # touching: one range
        ({"reserved": [[6379]]}, "at least 2"),
        ({"reserved": [[80, 90]]}, "greater than or equal to 1024"),
        ({"pools": [{"model": "a", "first": 3, "last": 2}]}, "before first pair"),
        ({"pools": [{"model": "a", "first": 0, "last": 1500}]}, "ends at pair 1500; the policy has 1500"),
        ({"pools": [{"model": "a", "first": 0, "last": 9}, {"model": "b", "first": 9, "last": 12}]}, "overlap"),
        ({"pools": [{"model": "a", "first": 0, "last": 1}, {"model": "a", "first": 5, "last": 6}]}, "more than one"),
        ({"pools": [{"model": "a", "first": 0, "last": 1, "overflow": "spill"}]}, "'shared' or 'fail'"),
    ],
)
def test_invalid_reserved_ports_and_pools(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PortPolicy.model_validate(fields)


def test_pool_lookups_and_policy_arithmetic() -> None:
    policy = PortPolicy(pools=[Pool(model="a", first=0, last=9), Pool(model="b", first=10, last=19, overflow="fail")])
    assert policy.pool_of("b") == Pool(model="b", first=10, last=19, overflow="fail")
    assert policy.pool_of("c") is None
    assert policy.pairs_with_backends(5002, 5010) == range(1, 5)  # backends 5003 5005 5007 5009
    assert policy.pairs_with_backends(1024, 1030) == range(0, 0)
    assert policy.index_of(5005, 8005) == 2
    assert policy.index_of(5005, 8007) is None and policy.index_of(5004, 8004) is None
    assert policy.describe().endswith("pools a: pairs 0-9 (overflow shared); b: pairs 10-19 (overflow fail)")
    assert PortPolicy(reserved=[[6379, 6380]]).reserved_ports() == {6379, 6380}
