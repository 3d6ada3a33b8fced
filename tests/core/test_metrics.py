"""Per-range and per-model figures and the Prometheus text, read back with ``prometheus_client``'s own parser."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portalloc.core.allocator import assign_many
from portalloc.core.metrics import model_usage, prometheus_text, range_usage, text_bar
from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy
from tests.conftest import RunCli, portalloc_script, subprocess_env

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
    assert found[("portalloc_range_allocated_pairs", (("model", ""), ("range", "shared")))] == 3
    assert found[("portalloc_range_allocated_pairs", (("model", "big"), ("range", "pool")))] == 3
    assert found[("portalloc_range_available_pairs", (("model", "tiny"), ("range", "pool")))] == 2
    assert found[("portalloc_range_capacity_pairs", (("model", "big"), ("range", "pool")))] == 5
    assert found[("portalloc_allocated_pairs", ())] == 6
    assert found[("portalloc_available_pairs", ())] == 9 + 2 + 2
    assert found[("portalloc_capacity_pairs", ())] == 19
    assert found[("portalloc_reserved_ports", ())] == 1
    assert found[("portalloc_conflicts", ())] == 0
    assert found[("portalloc_model_allocations", (("model", "a"),))] == 2


def test_every_family_has_one_label_set() -> None:
    # OpenMetrics (and Prometheus' own advice) wants every sample of a family labelled alike.
    families = text_string_to_metric_families(prometheus_text(platform_ledger()))
    for family in families:
        assert len({tuple(sorted(sample.labels)) for sample in family.samples}) == 1, family.name


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


# --- portalloc stats ------------------------------------------------------------------------


def test_stats_text_has_a_row_per_range_and_per_model(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("init")
    run_cli("pool", "add", "big", "--pairs", "0-9", "--overflow", "fail")
    for key in (("big", "1"), ("big", "2"), ("a", "1")):
        run_cli("get", *key)
    run_cli("reserve", "5025")
    lines = run_cli("stats").stdout.splitlines()
    assert lines[:8] == [
        f"Ledger:         {ledger_path}",
        "Allocations:    3 (2 models)",
        "Free pairs:     1,490 of 1,493",
        "Policy:         backend 5001-7999, frontend 8001-10999, step 2",
        "Bad-port pairs: 6 skipped",
        "Reserved ports: 1",
        "Off-sequence:   0 (pre-configured pairs outside the sequence)",
        "",
    ]
    # The longest free run of the shared range lies between the bad ports 5061 and 6665 (pairs 31-831).
    assert lines[8:] == [
        "RANGE     APPS  CAPACITY   FREE  LARGEST RUN   USED",
        "shared       1     1,483  1,482          801   0.1%  [#...................]",
        "pool big     2        10      8            8  20.0%  [####................]",
        "",
        "MODEL  APPS  CAPACITY   FREE  LARGEST RUN   USED",
        "a         1     1,483  1,482          801   0.1%  [#...................]",
        "big       2        10      8            8  20.0%  [####................]",
    ]


def test_stats_json_and_prometheus_from_the_real_command(ledger_path: Path) -> None:
    def portalloc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [portalloc_script(), "--ledger", str(ledger_path), *args],
            env=subprocess_env(),
            capture_output=True,
            text=True,
        )

    portalloc("init")
    portalloc("pool", "add", "big", "--pairs", "0-9")
    portalloc("get", "big", "1")
    report = json.loads(portalloc("stats", "--json").stdout)
    assert report["allocations"] == 1 and report["reserved_ports"] == 0
    assert report["ranges"][1] == {
        "range": "pool",
        "model": "big",
        "allocations": 1,
        "capacity": 10,
        "free_pairs": 9,
        "largest_free_run": 9,
        "utilisation": 0.1,
    }
    assert report["per_model"] == [
        {"model": "big", "pool": True, "allocations": 1, "capacity": 1494, "free_pairs": 1493,
         "largest_free_run": 801, "utilisation": round(1 / 1494, 4)},
    ]  # fmt: skip
    assert json.loads(portalloc("stats", "--format", "json").stdout) == report
    done = portalloc("stats", "--format", "prometheus")
    assert done.returncode == 0 and done.stderr == ""
    found = samples(done.stdout)
    assert found[("portalloc_range_allocated_pairs", (("model", "big"), ("range", "pool")))] == 1
    assert found[("portalloc_available_pairs", ())] == 1493
    clash = portalloc("stats", "--json", "--format", "prometheus")
    assert clash.returncode == 2 and clash.stderr.startswith("Error: --json and --format prometheus")
