"""PortAllocationService: the API the platform calls."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from portalloc import PortAllocationService, PortPair, get_or_allocate_ports
from portalloc.core.models import PortPolicy
from portalloc.errors import ConfigError, InvalidKey, PortallocError


def write_config(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(entries))
    return path


def test_seed_story(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    pairs = [service.get_or_allocate_ports(model, 1) for model in ("model_a", "model_b", "model_c")]
    assert [(p.backend, p.frontend) for p in pairs] == [(5001, 8001), (5003, 8003), (5005, 8005)]
    assert isinstance(pairs[0], PortPair)
    assert pairs[0].model == "model_a" and pairs[0].app_num == 1
    assert service.check_port_conflicts() == []


def test_allocation_is_stable_across_service_instances(ledger_path: Path) -> None:
    first = PortAllocationService(ledger_path).get_or_allocate_ports("m", 7)
    PortAllocationService(ledger_path).get_or_allocate_ports("other", 1)
    assert PortAllocationService(ledger_path).get_or_allocate_ports("m", 7) == first
    assert get_or_allocate_ports("m", 7, ledger_path) == first


def test_release_then_reuse(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    service.allocate_many([("m", 1), ("m", 2), ("m", 3)])
    assert service.release_ports("m", 2) is True
    assert service.release_ports("m", 2) is False
    assert service.get_ports("m", 2) is None
    assert service.get_or_allocate_ports("n", 1).backend == 5003


def test_get_ports_never_allocates(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    assert service.get_ports("m", 1) is None
    assert not ledger_path.exists()


def test_allocate_many_writes_once_and_keeps_order(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    service.get_or_allocate_ports("b", 1)
    pairs = service.allocate_many([("c", 1), ("b", 1), ("a", 1), ("c", 1)])
    assert [(p.model, p.backend) for p in pairs] == [("c", 5003), ("b", 5001), ("a", 5005), ("c", 5003)]
    assert [a.model for a in service.get_all_allocations()] == ["a", "b", "c"]


def test_invalid_keys_raise_invalid_key_and_write_nothing(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    for model, app_num in [("", 1), (" m", 1), ("a\tb", 1), ("m", 0), ("m", -1), ("m", True), ("m", 10**12)]:
        with pytest.raises(InvalidKey):
            service.get_or_allocate_ports(model, app_num)  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        service.allocate_many([("ok", 1), ("", 2)])
    assert not ledger_path.exists()


def test_policy_for_a_new_ledger_and_mismatch_error(ledger_path: Path) -> None:
    # Below Linux's default ephemeral range (32768-60999), which new allocations avoid.
    wide = PortPolicy(backend_start=20001, frontend_start=25001)
    assert PortAllocationService(ledger_path, policy=wide).get_or_allocate_ports("m", 1).ports == (20001, 25001)
    assert PortAllocationService(ledger_path).get_or_allocate_ports("m", 2).ports == (20003, 25003)
    with pytest.raises(PortallocError, match="already has the policy"):
        PortAllocationService(ledger_path, policy=PortPolicy()).get_or_allocate_ports("m", 3)


def test_stats(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    service.allocate_many([("a", 1), ("a", 2), ("b", 1)])
    stats = service.stats()
    assert (stats.allocations, stats.models, stats.capacity, stats.free_pairs) == (3, 2, 1494, 1491)


# --- pre-configuration ----------------------------------------------------------------------


def test_preconfigured_pair_is_honoured(ledger_path: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "port_config.json",
        [{"model": "model_x", "app_number": 2, "backend_port": 6101, "frontend_port": 9101, "note": "legacy"}],
    )
    service = PortAllocationService(ledger_path, config)
    assert service.get_or_allocate_ports("model_x", 2).ports == (6101, 9101)
    assert service.get_or_allocate_ports("model_y", 1).ports == (5001, 8001)


def test_preconfigured_ports_are_kept_for_their_key(ledger_path: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "port_config.json",
        [{"model": "late", "app_number": 1, "backend_port": 5001, "frontend_port": 8001}],
    )
    service = PortAllocationService(ledger_path, config)
    assert service.get_or_allocate_ports("early", 1).ports == (5003, 8003)
    assert service.get_or_allocate_ports("late", 1).ports == (5001, 8001)


def test_preconfigured_pair_in_use_falls_back_and_warns(
    ledger_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    PortAllocationService(ledger_path).get_or_allocate_ports("first", 1)  # 5001/8001, before the config existed
    config = write_config(
        tmp_path / "port_config.json",
        [{"model": "m", "app_number": 1, "backend_port": 5001, "frontend_port": 9999}],
    )
    with caplog.at_level(logging.WARNING, logger="portalloc"):
        pair = PortAllocationService(ledger_path, config).get_or_allocate_ports("m", 1)
    assert pair.ports == (5003, 8003)
    assert "ports 5001/9999 for m/1 cannot be used (port 5001 is held by first/1 (backend))" in caplog.text
    assert "5003/8003 instead" in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"model": "m"}', "Input should be a valid list"),
        ('[{"model": "m", "app_number": 1, "backend_port": 5001}]', "frontend_port: Field required"),
        (
            '[{"model": "m", "app_number": 0, "backend_port": 5001, "frontend_port": 8001}]',
            "app_num must be a whole number from 1",
        ),
        (
            '[{"model": "m", "app_number": 1, "backend_port": 80, "frontend_port": 8001}]',
            "greater than or equal to 1024",
        ),
        (
            '[{"model": "a", "app_number": 1, "backend_port": 5001, "frontend_port": 8001},'
            ' {"model": "b", "app_number": 1, "backend_port": 8001, "frontend_port": 8003}]',
            "port 8001 is configured for both a/1 and b/1",
        ),
        (
            '[{"model": "a", "app_number": 1, "backend_port": 5001, "frontend_port": 8001},'
            ' {"model": "a", "app_number": 1, "backend_port": 5003, "frontend_port": 8003}]',
            "a/1 is configured twice",
        ),
    ],
)
def test_malformed_preconfig_is_a_clear_error(ledger_path: Path, tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "port_config.json"
    config.write_text(content)
    with pytest.raises(ConfigError, match=r"port_config\.json") as error:
        PortAllocationService(ledger_path, config).get_or_allocate_ports("m", 1)
    assert message in str(error.value)
    assert not ledger_path.exists()


def test_missing_preconfig_file_is_an_error(ledger_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        PortAllocationService(ledger_path, tmp_path / "nope.json").get_or_allocate_ports("m", 1)


def test_sample_preconfig_in_misc_is_valid(ledger_path: Path) -> None:
    sample = Path(__file__).parents[2] / "misc" / "port_config.json"
    service = PortAllocationService(ledger_path, sample)
    entry = json.loads(sample.read_text())[0]
    pair = service.get_or_allocate_ports(entry["model"], entry["app_number"])
    assert pair.ports == (entry["backend_port"], entry["frontend_port"])


# --- threads --------------------------------------------------------------------------------


def test_threads_in_one_process_lose_nothing(ledger_path: Path) -> None:
    results: dict[tuple[str, int], tuple[int, int]] = {}
    errors: list[BaseException] = []

    def worker(thread: int) -> None:
        service = PortAllocationService(ledger_path)
        try:
            for app in range(1, 11):
                results[(f"t{thread}", app)] = service.get_or_allocate_ports(f"t{thread}", app).ports
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = {a.key: a.ports for a in PortAllocationService(ledger_path).get_all_allocations()}
    assert stored == results
    assert len(stored) == 80
    ports = [p for pair in stored.values() for p in pair]
    assert len(ports) == len(set(ports))


def test_release_of_nothing_takes_no_lock(ledger_path: Path) -> None:
    assert PortAllocationService(ledger_path).release_ports("m", 1) is False
    assert list(ledger_path.parent.iterdir()) == []
