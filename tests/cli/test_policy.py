"""The policy from the command line: ``init`` with options, ``policy``, ``policy set``, ``reserve``/``unreserve``.

In-process through click for the outputs, and the real ``portalloc`` script for the
promises a user's script relies on (exit codes, nothing written on a refusal).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from portalloc.core.models import Ledger, Pool, PortPolicy
from portalloc.machine import probe
from portalloc.service.facade import PortAllocationService
from portalloc.storage.codec import dump_ledger, parse_ledger
from tests.conftest import RunCli, portalloc_script, subprocess_env

WIDE = ("--backend-start", "20001", "--frontend-start", "26001", "--step", "1", "--max-port", "32000")


def portalloc(ledger: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [portalloc_script(), "--ledger", str(ledger), *args], env=subprocess_env(), capture_output=True, text=True
    )


# --- init -------------------------------------------------------------------------------


def test_init_creates_the_ledger_with_the_policy_and_prints_its_capacity(run_cli: RunCli, ledger_path: Path) -> None:
    result = run_cli("init", *WIDE, "--no-probe")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"Created {ledger_path}: 6,000 usable pairs (6,000 in range, 0 skipped for a bad port), "
        "backend 20001+, frontend 26001+, step 1, max 32000\n"
    )
    assert ledger_path.read_text() == (
        '{\n  "version": 1,\n  "policy": {"backend_start": 20001, "frontend_start": 26001, "step": 1, '
        '"max_port": 32000, "skip_bad_ports": true, "probe": false},\n  "allocations": []\n}\n'
    )
    assert run_cli("get", "m", "1").stdout == "m/1: backend 20001, frontend 26001\n"


def test_init_with_defaults_writes_the_bytes_of_a_default_ledger(run_cli: RunCli, ledger_path: Path) -> None:
    report = json.loads(run_cli("init", "--json").stdout)
    assert (report["pairs"], report["usable_pairs"], len(report["skipped"])) == (1500, 1494, 6)
    assert report["skipped"][0] == {"backend": 5061, "frontend": 8061, "reason": "5061 is a port browsers refuse"}
    assert ledger_path.read_bytes() == dump_ledger(Ledger())


def test_init_takes_a_path_argument(run_cli: RunCli, tmp_path: Path) -> None:
    elsewhere = tmp_path / "ports.json"
    assert run_cli("init", str(elsewhere), "--no-skip-bad-ports").exit_code == 0
    assert parse_ledger(elsewhere.read_bytes(), elsewhere).policy == PortPolicy(skip_bad_ports=False)


def test_init_refuses_an_existing_ledger_and_leaves_it_alone(ledger_path: Path) -> None:
    assert portalloc(ledger_path, "init").returncode == 0
    assert portalloc(ledger_path, "get", "m", "1").returncode == 0
    before = ledger_path.read_bytes()
    again = portalloc(ledger_path, "init", *WIDE)
    assert again.returncode == 1
    assert (
        again.stderr
        == f"Error: {ledger_path} already exists; it was left as it was ('portalloc policy set' changes its policy)\n"
    )
    assert ledger_path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--backend-start", "9000", "--frontend-start", "8001"), 1, "frontend_start (8001) must be above"),
        (("--step", "0"), 2, "Invalid value for '--step'"),
        (("--max-port", "70000"), 2, "Invalid value for '--max-port'"),
    ],
)
def test_init_with_a_bad_policy_writes_nothing(
    ledger_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    done = portalloc(ledger_path, "init", *args)
    assert done.returncode == code
    assert done.stderr.startswith("Error: ") and message in done.stderr and len(done.stderr.splitlines()) == 1
    assert not ledger_path.exists()


# --- policy, policy set --------------------------------------------------------------------


def test_policy_shows_ranges_capacity_and_every_skipped_pair(run_cli: RunCli) -> None:
    run_cli("init")
    run_cli("reserve", "6379")
    lines = run_cli("policy").stdout.splitlines()
    assert lines[:8] == [
        "Backends:  5001-7999, step 2",
        "Frontends: 8001-10999 (max port 65535)",
        "Pairs:     1,500 in range, 1,493 usable",
        "Bad ports: skipped",
        "Probe:     on",
        "Worktrees: shared",
        "Reserved:  6379",
        "Pools:     none",
    ]
    assert lines[8:] == [
        "skipped 5061/8061: 5061 is a port browsers refuse",
        "skipped 6379/9379: 6379 is reserved",
        "skipped 6665/9665: 6665 is a port browsers refuse",
        "skipped 6667/9667: 6667 is a port browsers refuse",
        "skipped 6669/9669: 6669 is a port browsers refuse",
        "skipped 6679/9679: 6679 is a port browsers refuse",
        "skipped 6697/9697: 6697 is a port browsers refuse",
    ]


def test_policy_set_widens_a_ledger_in_use(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("init")
    run_cli("get", "a", "1")
    report = json.loads(run_cli("policy", "set", "--max-port", "20999", "--frontend-start", "8001", "--json").stdout)
    assert report["max_port"] == 20999 and report["pairs"] == 1500  # backends still end at 7999
    wider = run_cli("policy", "set", "--frontend-start", "12001")
    assert wider.exit_code == 1
    assert "a/1 (5001/8001): frontend 8001 is outside the policy's frontend range 12001-20999" in wider.stderr
    assert parse_ledger(ledger_path.read_bytes(), ledger_path).policy.max_port == 20999


def test_policy_set_names_every_allocation_that_would_not_fit_and_writes_nothing(ledger_path: Path) -> None:
    assert portalloc(ledger_path, "init").returncode == 0
    for model in ("a", "b", "c"):
        assert portalloc(ledger_path, "get", model, "1").returncode == 0  # 5001, 5003, 5005
    before = ledger_path.read_bytes()
    done = portalloc(ledger_path, "policy", "set", "--backend-start", "5005")
    assert done.returncode == 1
    assert done.stderr == (
        "Error: the new policy does not fit 2 allocations, nothing changed: "
        "a/1 (5001/8001): backend 5001 is outside the policy's backend range 5005-8000; "
        "b/1 (5003/8003): backend 5003 is outside the policy's backend range 5005-8000\n"
    )
    assert ledger_path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "say what to change"),
        (("--step", "x"), 2, "Invalid value for '--step'"),
        (("--frontend-start", "5001"), 1, "invalid policy: frontend_start (5001) must be above backend_start"),
    ],
)
def test_policy_set_bad_input(ledger_path: Path, args: tuple[str, ...], code: int, message: str) -> None:
    portalloc(ledger_path, "init")
    before = ledger_path.read_bytes()
    done = portalloc(ledger_path, "policy", "set", *args)
    assert (done.returncode, done.stdout) == (code, "")
    assert done.stderr.startswith("Error: ") and message in done.stderr
    assert ledger_path.read_bytes() == before


def test_policy_commands_need_a_ledger_and_create_nothing(ledger_path: Path) -> None:
    for args in (("policy", "set", "--step", "4"), ("reserve", "6379"), ("pool", "add", "m", "--pairs", "0-9")):
        done = portalloc(ledger_path, *args)
        assert done.returncode == 1
        assert done.stderr == (
            f"Error: there is no ledger at {ledger_path}; create one with `portalloc init {ledger_path}` "
            "(a write starts one by itself only at the root of the git repository)\n"
        )
    assert list(ledger_path.parent.iterdir()) == []


# --- reserve, unreserve ------------------------------------------------------------------------


def test_reserved_ports_are_never_handed_out_by_the_real_command(ledger_path: Path) -> None:
    portalloc(ledger_path, "init")
    done = portalloc(ledger_path, "reserve", "5001", "8003", "5005-5007", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"reserved": [[5001, 5001], [5005, 5007], [8003, 8003]]}
    got = [portalloc(ledger_path, "get", "m", str(n), "--json").stdout for n in (1, 2)]
    assert [(json.loads(g)["backend"], json.loads(g)["frontend"]) for g in got] == [(5009, 8009), (5011, 8011)]
    assert '"reserved": [[5001, 5001], [5005, 5007], [8003, 8003]]' in ledger_path.read_text()


def test_reserving_a_held_port_reports_the_app_and_never_moves_it(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("init")
    run_cli("get", "a", "1")
    done = run_cli("reserve", "8001", "6379")
    assert done.exit_code == 0
    assert done.stdout == "Reserved: 6379, 8001\n"
    assert done.stderr == "Warning: a/1 already holds reserved port 8001; it keeps it\n"
    assert run_cli("get", "a", "1").stdout == "a/1: backend 5001, frontend 8001\n"
    check = run_cli("check")
    assert check.exit_code == 0 and check.stderr == f"Warning: a/1 holds reserved port 8001 ({ledger_path})\n"
    again = run_cli("reserve", "8001")  # already reserved: nothing new to report
    assert again.stderr == ""


def test_unreserve_splits_ranges_and_ignores_ports_that_were_not_reserved(run_cli: RunCli) -> None:
    run_cli("init")
    run_cli("reserve", "6000-6010")
    assert run_cli("unreserve", "6005", "7000").stdout == "Reserved: 6000-6004, 6006-6010\n"
    assert run_cli("unreserve", "6000-6010").stdout == "Reserved: none\n"


@pytest.mark.parametrize("bad", ["80", "abc", "7000-6000", "70000", "1-2-3", ""])
def test_reserve_bad_ranges_are_usage_errors(ledger_path: Path, bad: str) -> None:
    portalloc(ledger_path, "init")
    before = ledger_path.read_bytes()
    done = portalloc(ledger_path, "reserve", bad)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: Invalid value for 'PORT|LOW-HIGH...'") and len(done.stderr.splitlines()) == 1
    assert ledger_path.read_bytes() == before


def test_the_ledger_keeps_reserved_ports_and_pools_in_its_canonical_bytes() -> None:
    policy = PortPolicy(reserved=[[6379, 6379]], pools=[Pool(model="big", first=0, last=99, overflow="fail")])
    ledger = Ledger(policy=policy)
    data = dump_ledger(ledger)
    assert (
        b'"reserved": [[6379, 6379]], "pools": [{"model": "big", "first": 0, "last": 99, "overflow": "fail"}]' in data
    )
    assert parse_ledger(data, "x") == ledger and dump_ledger(parse_ledger(data, "x")) == data
    assert b"reserved" not in dump_ledger(Ledger()) and b"pools" not in dump_ledger(Ledger())


# --- the OS's reserved ports -----------------------------------------------------------------


def test_os_reserved_ports_are_read_in_the_kernels_format(tmp_path: Path) -> None:
    listing = tmp_path / "ip_local_reserved_ports"
    listing.write_text("5001,8003-8005\n")
    assert probe.os_reserved_ports(listing) == {5001, 8003, 8004, 8005}
    listing.write_text("\n")
    assert probe.os_reserved_ports(listing) == frozenset()
    listing.write_text("junk\n")
    assert probe.os_reserved_ports(listing) == frozenset()
    assert probe.os_reserved_ports(tmp_path / "missing") == frozenset()


@pytest.mark.skipif(not probe.RESERVED_PORTS_FILE.exists(), reason="not Linux: no ip_local_reserved_ports")
def test_this_machines_reserved_port_list_parses() -> None:
    text = probe.RESERVED_PORTS_FILE.read_text().strip()
    expected = sum(int(b or a) - int(a) + 1 for a, _, b in (item.partition("-") for item in text.split(",") if item))
    assert len(probe.os_reserved_ports()) == expected


def test_os_reserved_ports_are_skipped_like_held_ones_when_probing(
    ledger_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = tmp_path / "ip_local_reserved_ports"
    listing.write_text("5001,8003\n")
    monkeypatch.setattr(probe, "RESERVED_PORTS_FILE", listing)
    service = PortAllocationService(ledger_path)
    assert service.get_or_allocate_ports("m", 1).ports == (5005, 8005)
    # Probing off: the ledger alone decides, so the same ledger gives the same pair anywhere.
    pure = PortAllocationService(tmp_path / "pure.json", probe=False)
    assert pure.get_or_allocate_ports("m", 1).ports == (5001, 8001)


# --- a change that moves what the ledger holds ----------------------------------------------


def test_policy_set_that_moves_a_pool_is_refused_naming_the_apps(ledger_path: Path) -> None:
    assert portalloc(ledger_path, "init").returncode == 0
    assert portalloc(ledger_path, "pool", "add", "pooled", "--pairs", "500-599").returncode == 0
    assert portalloc(ledger_path, "get", "pooled", "1").stdout == "pooled/1: backend 6001, frontend 9001\n"
    assert portalloc(ledger_path, "get", "other", "1").returncode == 0  # 5001/8001: stays on the sequence
    before = ledger_path.read_bytes()
    done = portalloc(ledger_path, "policy", "set", "--step", "4")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "Error: the new policy moves what the ledger holds, nothing changed: "
        "the pool of pooled moves from backends 6001-6199 to 7001-7397; "
        "pooled/1 (6001/9001) leaves the pool of pooled (--force to go ahead)\n"
    )
    assert ledger_path.read_bytes() == before

    forced = portalloc(ledger_path, "policy", "set", "--step", "4", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr == (
        "Warning: policy changed: the pool of pooled moves from backends 6001-6199 to 7001-7397\n"
        "Warning: policy changed: pooled/1 (6001/9001) leaves the pool of pooled\n"
    )
    assert parse_ledger(ledger_path.read_bytes(), ledger_path).policy.step == 4


def test_policy_set_that_puts_apps_off_the_sequence_is_refused(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("init")
    run_cli("get-many", input="a 1\nb 1\nc 1\n")  # pairs 0, 1, 2
    refused = run_cli("policy", "set", "--step", "3")
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: the new policy moves what the ledger holds, nothing changed: "
        "b/1 (5003/8003) leaves the sequence of pairs; c/1 (5005/8005) leaves the sequence of pairs "
        "(--force to go ahead)\n"
    )
    # Widening does not move anything: allowed as before.
    assert run_cli("policy", "set", "--max-port", "20999").exit_code == 0


# --- capacity on this machine ---------------------------------------------------------------

ACROSS_EPHEMERAL = ("--backend-start", "10001", "--frontend-start", "30001", "--step", "1", "--max-port", "49999")


@pytest.fixture
def ephemeral_32768(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's ephemeral range is Linux's default, 32768-60999, and the OS reserves no port."""
    monkeypatch.setattr(probe, "ephemeral_range", lambda: (32768, 60999))
    monkeypatch.setattr(probe, "os_reserved_ports", lambda: frozenset())


@pytest.mark.usefixtures("ephemeral_32768")
def test_capacity_across_the_ephemeral_range_is_counted_honestly(run_cli: RunCli, tmp_path: Path) -> None:
    created = run_cli("init", *ACROSS_EPHEMERAL)
    assert created.exit_code == 0, created.stderr
    assert "19,998 usable pairs (19,999 in range, 1 skipped for a bad port, 2,766 usable on this machine)" in (
        created.stdout
    )
    assert created.stderr.startswith("Warning: the policy (backend 10001+, frontend 30001+, step 1, max 49999) ")
    assert "overlaps the OS ephemeral port range 32768-60999 at 32768-49999" in created.stderr
    shown = json.loads(run_cli("policy", "--json").stdout)
    assert (shown["usable_pairs"], shown["usable_here"]) == (19_998, 2_766)
    assert "Pairs:     19,999 in range, 19,998 usable, 2,766 usable on this machine" in run_cli("policy").stdout

    # The operators' case: 10,000 rows imported on the first pairs; every pair usable here is now held.
    rows = [
        {"model": "m", "app_number": k + 1, "backend_port": 10001 + k, "frontend_port": 30001 + k}
        for k in range(10_000)
    ]
    source = tmp_path / "port_config.json"
    source.write_text(json.dumps(rows))
    assert json.loads(run_cli("import", str(source), "--json").stdout)["imported"] == 9_999  # one on bad port 10080
    stats = run_cli("stats")
    assert (
        "Free pairs:     0 of 2,766 usable on this machine (9,999 of 19,998 in the policy; "
        "17,232 touch the OS ephemeral range, ports the OS reserves or ports other checkouts lease here)"
    ) in stats.stdout
    figures = json.loads(run_cli("stats", "--json").stdout)
    assert (figures["free_pairs"], figures["usable_here"], figures["free_here"]) == (9_999, 2_766, 0)
    assert figures["ranges"][0]["free_pairs"] == 0
    prometheus = run_cli("stats", "--format", "prometheus").stdout
    assert "portalloc_available_pairs_here 0\n" in prometheus and "portalloc_capacity_pairs_here 2766\n" in prometheus
    full = run_cli("get", "new", "1")
    assert full.exit_code == 1 and "no free port pair left" in full.stderr

    # Probing off: the ledger alone decides, so every pair of the policy may be handed out here.
    assert run_cli("policy", "set", "--no-probe").exit_code == 0
    assert json.loads(run_cli("stats", "--json").stdout)["free_here"] == 9_999


@pytest.mark.usefixtures("ephemeral_32768")
def test_policy_set_into_the_ephemeral_range_warns(run_cli: RunCli) -> None:
    run_cli("init")
    quiet = run_cli("policy", "set", "--max-port", "20999")
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    warned = run_cli("policy", "set", "--frontend-start", "30001", "--max-port", "40000")
    assert warned.exit_code == 0
    assert "overlaps the OS ephemeral port range 32768-60999" in warned.stderr


def test_worktrees_separate_is_set_shown_and_undone_to_the_same_bytes(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("init")
    run_cli("get", "model_a", "1")
    shared = ledger_path.read_bytes()
    report = json.loads(run_cli("policy", "set", "--worktrees", "separate", "--json").stdout)
    assert report["worktrees"] == "separate"
    data = ledger_path.read_bytes()
    assert data.startswith(b'{\n  "version": 2,\n') and b'"worktrees": "separate"' in data
    assert "Worktrees: separate" in run_cli("policy").stdout.splitlines()
    assert json.loads(run_cli("get", "model_a", "1", "--json").stdout)["backend"] == 5001  # not a worktree here
    run_cli("policy", "set", "--worktrees", "shared")
    assert ledger_path.read_bytes() == shared


def test_init_takes_worktrees(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("init", "--worktrees", "separate")
    assert parse_ledger(ledger_path.read_bytes(), ledger_path).policy.worktrees == "separate"
    assert portalloc(ledger_path, "policy", "set", "--worktrees", "apart").returncode == 2
