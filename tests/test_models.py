"""The pydantic models: policy arithmetic and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from portalloc.models import Allocation, Ledger, PortPolicy


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
    with pytest.raises(ValidationError):
        PortPolicy(**kwargs)  # type: ignore[arg-type]


def test_allocation_validation() -> None:
    assert Allocation(model="m", app_num=1, backend=5001, frontend=8001).label() == "m/1"
    for bad in (
        {"backend": 5001, "frontend": 5001},
        {"backend": 80, "frontend": 8001},
        {"backend": 5001, "frontend": 65536},
    ):
        with pytest.raises(ValidationError):
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
