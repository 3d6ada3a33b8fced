"""Both faces give each report the same keys and values: the CLI's ``--json`` and a real ``portalloc serve``.

One ledger, with a conflict, a pool, a reserved port and a port this test holds, is
asked for every report through both faces; the JSON must be equal, key for key. The
pydantic-free pair object that ``get``'s fast path prints is pinned to the schema's dump.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")

from portalloc.cli.pairtext import pair_json, used_pair_json
from portalloc.core.audit import Usage, usage
from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy
from portalloc.core.worktreepair import WorktreePair, worktree_of
from portalloc.reports import StatsReport, dump_json, stats_report, used_pair
from portalloc.storage.codec import dump_ledger
from tests.conftest import RunCli
from tests.serving import ServerProcess, kill_group, start_server

#: Ports nothing on a test machine holds, below the usual ephemeral ranges.
BASE = 29001
HELD = BASE + 502  # the frontend of a/2, held by this test while the reports are taken


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's one ledger, which ``run_cli`` and the server share (every test here only reads it)."""
    return tmp_path_factory.mktemp("reports") / "portalloc.json"


@pytest.fixture(scope="module")
def both_faces(ledger_path: Path) -> Iterator[ServerProcess]:
    """A real server over a ledger with a conflict (b/1 on a/1's backend), a pool and a reserved port.

    Started once for the module: the tests only read. That they did is checked when it stops.
    """
    policy = PortPolicy(
        backend_start=BASE,
        frontend_start=BASE + 500,
        reserved=[[BASE + 4, BASE + 4]],
        pools=[Pool(model="pooled", first=10, last=14)],
    )
    rows = [
        Allocation(model="a", app_num=1, backend=BASE, frontend=BASE + 500),
        Allocation(model="a", app_num=2, backend=BASE + 2, frontend=HELD),
        Allocation(model="b", app_num=1, backend=BASE, frontend=BASE + 506),
        Allocation(model="pooled", app_num=1, backend=BASE + 20, frontend=BASE + 520),
    ]
    written = dump_ledger(Ledger(policy=policy).with_allocations(rows))
    ledger_path.write_bytes(written)
    server = start_server(ledger_path.parent, ledger=ledger_path)
    try:
        yield server
    finally:
        server.stop()
        kill_group(server)
    assert ledger_path.read_bytes() == written  # no test changed what the others read


@pytest.fixture
def held_port() -> Iterator[int]:
    """``HELD`` listening on 127.0.0.1 (this process holds it: ``status`` reports it held by something else)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", HELD))
        listener.listen()
        yield HELD


#: The keys of ``stats --json`` and ``GET /v1/stats``, in order: a contract scripts may rely on.
STATS_KEYS = [
    "ledger",
    "worktree",
    "worktree_pairs",
    "allocations",
    "models",
    "capacity",
    "free_pairs",
    "bad_port_pairs",
    "off_sequence",
    "usable_here",
    "free_here",
    "reserved_ports",
    "policy",
    "ranges",
    "per_model",
]

# (CLI arguments, HTTP path, the HTTP status, the CLI's exit code)
REPORTS = {
    "list": (["list", "--json"], "/v1/allocations", 200, 0),
    "list of a model": (["list", "--model", "a", "--json"], "/v1/allocations?model=a", 200, 0),
    "get": (["get", "a", "2", "--json"], "/v1/allocations/a/2", 200, 0),
    "stats": (["stats", "--json"], "/v1/stats", 200, 0),
    "stats (--format json)": (["stats", "--format", "json"], "/v1/stats", 200, 0),
    "status": (["status", "--json"], "/v1/status", 200, 0),
    "status of a model": (["status", "--model", "a", "--json"], "/v1/status?model=a", 200, 0),
    "policy": (["policy", "--json"], "/v1/policy", 200, 0),
}


@pytest.mark.usefixtures("held_port")
@pytest.mark.parametrize("name", list(REPORTS))
def test_the_cli_and_the_http_api_give_one_report(name: str, both_faces: ServerProcess, run_cli: RunCli) -> None:
    args, path, status, exit_code = REPORTS[name]
    with both_faces.client() as client:
        response = client.get(path)
    result = run_cli(*args)
    assert (result.exit_code, response.status_code) == (exit_code, status), result.stderr
    assert json.loads(result.stdout) == response.json()
    if name == "status":  # the report is about something: a held port, found by both faces
        assert any(f["port"] == HELD for f in response.json()["findings"])
    if name == "stats":  # every key, in the same order on both faces (dict equality above ignores order)
        assert list(json.loads(result.stdout)) == list(response.json()) == STATS_KEYS


def test_check_of_one_ledger_is_the_http_check(both_faces: ServerProcess, run_cli: RunCli) -> None:
    with both_faces.client() as client:
        response = client.get("/v1/check")
    result = run_cli("check", "--json")
    assert (result.exit_code, response.status_code) == (1, 409)  # a/1 and b/1 share a backend
    cli = json.loads(result.stdout)
    assert cli == {"ok": False, "ledgers": [response.json()]}
    assert response.json()["conflicts"][0]["port"] == BASE


def test_the_pair_objects_of_the_fast_path_are_the_schemas_dumps() -> None:
    allocation = Allocation(model="モデル/x", app_num=7, backend=5001, frontend=8001)
    fast = pair_json(allocation.model, allocation.app_num, allocation.backend, allocation.frontend)
    assert json.dumps(fast) == json.dumps(json.loads(allocation.model_dump_json()))  # same keys, same order
    assert json.dumps(fast, ensure_ascii=False, indent=2) == dump_json(allocation)
    for pair in (allocation, WorktreePair(**allocation.model_dump(), worktree="/w/wt1")):
        used = used_pair_json(pair.model, pair.app_num, pair.backend, pair.frontend, worktree_of(pair))
        assert json.dumps(used, ensure_ascii=False, indent=2) == dump_json(used_pair(pair))


def test_the_stats_counts_are_usages_fields_in_its_order(tmp_path: Path) -> None:
    """``core.audit.Usage`` is the one list of the counts: a count added to, dropped from or
    reordered in either ``Usage`` or the report, and not in the other, fails here."""
    policy = PortPolicy(reserved=[[5003, 5003]], pools=[Pool(model="p", first=5, last=9)])
    rows = [
        Allocation(model="a", app_num=1, backend=5001, frontend=8001),
        Allocation(model="p", app_num=1, backend=5011, frontend=8011),
        Allocation(model="x", app_num=1, backend=5002, frontend=9002),  # off the sequence
    ]
    ledger = Ledger(policy=policy).with_allocations(rows)
    unusable = frozenset({5005, 8007})
    counts = usage(ledger, unusable).model_dump()
    dumped = json.loads(dump_json(stats_report(tmp_path / "ports.json", ledger, unusable)))
    assert STATS_KEYS[3 : 3 + len(counts)] == list(Usage.model_fields) == list(counts)
    assert {key: dumped[key] for key in counts} == counts
    assert list(dumped) == list(StatsReport.model_fields) == STATS_KEYS


@pytest.mark.usefixtures("held_port")
def test_check_live_is_the_http_check_live(both_faces: ServerProcess, run_cli: RunCli) -> None:
    with both_faces.client() as client:
        response = client.get("/v1/check", params={"live": "true"})
    result = run_cli("check", "--live", "--json")
    assert (result.exit_code, response.status_code) == (1, 409)
    assert json.loads(result.stdout) == {"ok": False, "ledgers": [response.json()]}
    assert any(str(HELD) in problem for problem in response.json()["live_problems"])


def test_status_names_a_port_another_ledger_leases_here_in_both_faces(
    tmp_path: Path, ledger_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server of its own, over a copy of the module's ledger: this test leases a port in the store the
    # server reads, which the module's shared server must not see.
    mine = tmp_path / "mine" / "portalloc.json"
    mine.parent.mkdir()
    mine.write_bytes(ledger_path.read_bytes())
    monkeypatch.setenv("PORTALLOC_STATE_DIR", str(mine.parent / "state"))  # the server's host lease store
    other = tmp_path / "other" / "portalloc.json"
    other.parent.mkdir()
    other.write_bytes(
        dump_ledger(Ledger().with_allocations([Allocation(model="m", app_num=1, backend=BASE + 2, frontend=5001)]))
    )
    assert run_cli("--ledger", str(other), "host", "sync").exit_code == 0  # its pair is leased here
    server = start_server(mine.parent, ledger=mine)
    try:
        with server.client() as client:
            response = client.get("/v1/status")
    finally:
        server.stop()
        kill_group(server)
    result = run_cli("--ledger", str(mine), "status", "--json")
    assert (result.exit_code, response.status_code) == (0, 200), result.stderr
    assert json.loads(result.stdout) == response.json()
    shared = [f for f in response.json()["findings"] if "leased" in f["message"]]
    assert shared == [
        {
            "model": "a",
            "app_num": 2,
            "role": "backend",
            "port": BASE + 2,
            "message": f"port {BASE + 2} of a/2 is also leased to m/1 of {other}",
        }
    ]  # on main: only the text output said so; a/1 and b/1's own conflict is check's, not a lease finding
