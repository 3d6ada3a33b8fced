"""Per-range and per-model figures and the Prometheus text, read back with ``prometheus_client``'s own parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portalloc.allocator import assign_many
from portalloc.metrics import model_usage, prometheus_text, range_usage, text_bar
from portalloc.models import Allocation, Ledger, Pool, PortPolicy

#: 20 pairs (6001/6041 … 6039/6079), no bad port among them.
POLICY = PortPolicy(backend_start=6001, frontend_start=6041, step=2, max_port=6100)


def platform_ledger() -> Ledger:
    """Pool "big" on pairs 0-4, pool "tiny" on 10-11 (must not overflow), 6013 reserved (pair 6)."""
    policy = POLICY.model_copy(
        update={
            "pools": [Pool(model="big", first=0, last=4), Pool(model="tiny", first=10, last=11, overflow="fail")],
            "reserved": [[6013, 6013]],
        }
    )
    ledger, _ = assign_many(Ledger(policy=policy), [("big", 1), ("big", 2), ("big", 3), ("a", 1), ("a", 2), ("b", 1)])
    return ledger


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_range_rows_count_allocations_capacity_free_pairs_and_the_longest_free_run() -> None:
    ledger = platform_ledger()
    # big: pairs 0-2 held. a/1, a/2, b/1: pairs 5, 7, 8 (6 is reserved). Shared: pairs 5-9, 12-19.
    shared, big, tiny = range_usage(ledger)
    assert shared.pool is None and shared.name == "shared"
    assert (shared.allocations, shared.capacity, shared.free, shared.largest_free_run) == (3, 12, 9, 8)
    assert (big.name, big.allocations, big.capacity, big.free, big.largest_free_run) == ("pool big", 3, 5, 2, 2)
    assert (tiny.allocations, tiny.capacity, tiny.free, tiny.largest_free_run) == (0, 2, 2, 2)
    assert shared.utilisation == pytest.approx(3 / 12) and tiny.utilisation == 0.0


def test_model_rows_count_the_room_each_model_has() -> None:
    rows = {row.model: row for row in model_usage(platform_ledger())}
    assert list(rows) == ["a", "b", "big", "tiny"]
    assert (rows["a"].allocations, rows["a"].capacity, rows["a"].free) == (2, 11, 9)
    assert (rows["big"].allocations, rows["big"].capacity, rows["big"].free) == (3, 14, 11)  # pool, then shared
    assert (rows["tiny"].allocations, rows["tiny"].capacity, rows["tiny"].largest_free_run) == (0, 2, 2)  # pool only
    assert rows["big"].largest_free_run == 8


def test_prometheus_text_parses_with_the_official_parser() -> None:
    found = samples(prometheus_text(platform_ledger()))
    assert found[("portalloc_range_allocated_pairs", (("range", "shared"),))] == 3
    assert found[("portalloc_range_allocated_pairs", (("model", "big"), ("range", "pool")))] == 3
    assert found[("portalloc_range_available_pairs", (("model", "tiny"), ("range", "pool")))] == 2
    assert found[("portalloc_range_capacity_pairs", (("model", "big"), ("range", "pool")))] == 5
    assert found[("portalloc_allocated_pairs", ())] == 6
    assert found[("portalloc_available_pairs", ())] == 9 + 2 + 2
    assert found[("portalloc_capacity_pairs", ())] == 19
    assert found[("portalloc_reserved_ports", ())] == 1
    assert found[("portalloc_conflicts", ())] == 0
    assert found[("portalloc_model_allocations", (("model", "a"),))] == 2


def test_label_values_are_escaped_and_conflicts_counted() -> None:
    odd = 'we"ird\\model'
    rows = [
        Allocation(model=odd, app_num=1, backend=6001, frontend=6041),
        Allocation(model="b", app_num=1, backend=6001, frontend=6043),
    ]
    text = prometheus_text(Ledger(policy=POLICY).with_allocations(rows))
    assert 'model="we\\"ird\\\\model"' in text
    found = samples(text)
    assert found[("portalloc_model_allocations", (("model", odd),))] == 1
    assert found[("portalloc_conflicts", ())] == 1
    assert text.endswith("\n")


def test_an_empty_ledger_has_every_gauge() -> None:
    found = samples(prometheus_text(Ledger()))
    assert found[("portalloc_capacity_pairs", ())] == 1494
    assert found[("portalloc_available_pairs", ())] == 1494
    assert found[("portalloc_allocated_pairs", ())] == 0


@pytest.mark.parametrize(
    ("fraction", "bar"),
    [(0.0, "[..........]"), (0.001, "[#.........]"), (0.5, "[#####.....]"), (1.0, "[##########]")],
)
def test_text_bar(fraction: float, bar: str) -> None:
    assert text_bar(fraction, width=10) == bar
