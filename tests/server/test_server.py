"""``portalloc serve`` end to end: a real uvicorn process on 127.0.0.1 and on a unix socket, driven by httpx."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")

import httpx

from portalloc import PortAllocationService
from portalloc.core.metrics import prometheus_text
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.storage.codec import dump_ledger, parse_ledger
from portalloc.storage.ledger import LedgerFile
from tests.conftest import portalloc_script, subprocess_env
from tests.serving import ServerProcess, kill_group, start_server
from tests.testing.storage import locked


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module (each test uses its own model names), lock timeout 0.5 s."""
    tmp = tmp_path_factory.mktemp("serve")
    running = start_server(tmp, "--lock-timeout", "0.5")
    yield running
    code, _, err = running.stop()
    kill_group(running)
    assert code == 0, err


@pytest.fixture
def swap_ledger(server: ServerProcess) -> Iterator[None]:
    """Let a test put another ledger in place; the original bytes come back afterwards."""
    before = server.ledger.read_bytes() if server.ledger.exists() else None
    yield
    if before is None:
        server.ledger.unlink(missing_ok=True)
    else:
        server.ledger.write_bytes(before)


def _ledger_rows(path: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(path.read_text())["allocations"]
    return rows


# --- allocations -----------------------------------------------------------------------------


def test_put_allocates_then_returns_the_same_pair(server: ServerProcess) -> None:
    with server.client() as client:
        first = client.put("/v1/allocations/put_model/1", headers=server.write_headers())
        again = client.put("/v1/allocations/put_model/1", headers=server.write_headers())
        looked_up = client.get("/v1/allocations/put_model/1")
    assert first.status_code == 201
    assert again.status_code == 200
    assert looked_up.status_code == 200
    body = first.json()
    assert set(body) == {"model", "app_num", "backend", "frontend", "worktree"}
    assert body["worktree"] is None  # the ledger's pair (not a linked worktree's own)
    assert again.json() == looked_up.json() == body
    assert {"model": "put_model", "app_num": 1, "backend": body["backend"], "frontend": body["frontend"]} in (
        _ledger_rows(server.ledger)
    )


def test_a_ledger_that_does_not_exist_stops_the_server_before_it_makes_anything(tmp_path: Path) -> None:
    missing = tmp_path / "typo.json"
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(missing), "serve", "--token-file", "new-token", "--uds", "new.sock"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: there is no ledger at {missing}; create one with `portalloc init {missing}` "
        "(a write starts one by itself only at the root of the git repository)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_get_of_an_unknown_key_is_404_and_allocates_nothing(server: ServerProcess) -> None:
    before = server.ledger.read_bytes() if server.ledger.exists() else b""
    with server.client() as client:
        response = client.get("/v1/allocations/never_asked/7")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["detail"].startswith("never_asked/7 has no allocation in ")
    assert (server.ledger.read_bytes() if server.ledger.exists() else b"") == before


@pytest.mark.parametrize(
    ("model", "url_segment"),
    [
        ("openai/gpt-4o", "openai%2Fgpt-4o"),  # the encoded slash that ASGI servers decode before routing
        ("openai/gpt-4o-mini", "openai/gpt-4o-mini"),  # and a plain one
        ("my model", "my%20model"),
        ("modèle/日本", "mod%C3%A8le%2F%E6%97%A5%E6%9C%AC"),
        ("50%/off", "50%25%2Foff"),
    ],
)
def test_model_names_with_slashes_spaces_and_non_ascii_round_trip(
    server: ServerProcess, model: str, url_segment: str
) -> None:
    with server.client() as client:
        created = client.put(f"/v1/allocations/{url_segment}/3", headers=server.write_headers())
        listed = client.get("/v1/allocations", params={"model": model})
        deleted = client.delete(f"/v1/allocations/{url_segment}/3", headers=server.write_headers())
    assert created.status_code == 201, created.text
    assert created.json()["model"] == model
    assert [row["model"] for row in listed.json()] == [model]
    assert deleted.status_code == 204
    assert all(row["model"] != model for row in _ledger_rows(server.ledger))


def test_delete_releases_and_a_second_delete_is_404(server: ServerProcess) -> None:
    with server.client() as client:
        client.put("/v1/allocations/del_model/1", headers=server.write_headers())
        first = client.delete("/v1/allocations/del_model/1", headers=server.write_headers())
        second = client.delete("/v1/allocations/del_model/1", headers=server.write_headers())
    assert first.status_code == 204
    assert first.content == b""
    assert second.status_code == 404
    assert second.json()["code"] == "not_found"


def test_list_is_sorted_and_filters_by_model(server: ServerProcess) -> None:
    with server.client() as client:
        for app_num in (2, 1):
            client.put(f"/v1/allocations/list_model/{app_num}", headers=server.write_headers())
        everything = client.get("/v1/allocations").json()
        only = client.get("/v1/allocations", params={"model": "list_model"}).json()
    assert [(row["model"], row["app_num"]) for row in only] == [("list_model", 1), ("list_model", 2)]
    assert everything == sorted(everything, key=lambda row: (row["model"], row["app_num"]))
    assert everything == [{**row, "worktree": None} for row in _ledger_rows(server.ledger)]
    assert client_rows(server, committed=True) == everything  # not a linked worktree: the same pairs


def client_rows(server: ServerProcess, **params: object) -> list[dict[str, object]]:
    with server.client() as client:
        rows: list[dict[str, object]] = client.get("/v1/allocations", params=params).json()
    return rows


def test_batch_allocates_in_order_under_one_write(server: ServerProcess) -> None:
    keys = [{"model": "batch_model", "app_num": n} for n in (3, 1, 2)]
    with server.client() as client:
        response = client.post("/v1/allocations/batch", json={"keys": keys}, headers=server.write_headers())
        again = client.post("/v1/allocations/batch", json={"keys": keys}, headers=server.write_headers())
    assert response.status_code == 200
    pairs = response.json()
    assert [(p["model"], p["app_num"]) for p in pairs] == [("batch_model", 3), ("batch_model", 1), ("batch_model", 2)]
    assert again.json() == pairs  # idempotent
    ports = [port for p in pairs for port in (p["backend"], p["frontend"])]
    assert len(set(ports)) == 6


# --- reports ---------------------------------------------------------------------------------


def test_stats_check_status_metrics_healthz_and_openapi(server: ServerProcess) -> None:
    with server.client() as client:
        client.put("/v1/allocations/report_model/1", headers=server.write_headers())
        stats = client.get("/v1/stats").json()
        check = client.get("/v1/check")
        status = client.get("/v1/status", params={"model": "report_model"}).json()
        metrics = client.get("/metrics")
        health = client.get("/healthz").json()
        openapi = client.get("/openapi.json").json()
    rows = _ledger_rows(server.ledger)
    assert stats["allocations"] == len(rows)
    assert stats["ledger"] == str(server.ledger)
    assert stats["free_pairs"] == stats["capacity"] - len(rows)
    assert check.status_code == 200
    assert check.json() == {
        "ledger": str(server.ledger),
        "ok": True,
        "valid": True,
        "allocations": len(rows),
        "conflicts": [],
        "live_problems": [],
    }
    assert [(a["model"], a["app_num"]) for a in status["allocations"]] == [("report_model", 1)]
    assert status["allocations"][0]["live"]["backend"]["state"] in ("free", "listening", "reserved")
    assert metrics.headers["content-type"].startswith("text/plain")
    # Exactly what `stats --format prometheus` prints (the one function both call), then the server's own.
    ledger_text = prometheus_text(parse_ledger(server.ledger.read_bytes(), server.ledger))
    assert metrics.text.startswith(ledger_text)
    assert metrics.text[len(ledger_text) :].startswith("# HELP portalloc_http_requests_total ")
    assert f" {len(rows)}\n" in metrics.text
    assert health == {"status": "ok"}
    assert "/v1/allocations/{model}/{app_num}" in openapi["paths"]


@pytest.mark.usefixtures("swap_ledger")
def test_a_conflicted_ledger_is_409_on_check_and_counted_in_metrics(server: ServerProcess) -> None:
    # What a careless merge leaves: two keys on one backend port.
    ledger = Ledger(
        allocations=[
            Allocation(model="a", app_num=1, backend=5001, frontend=8001),
            Allocation(model="b", app_num=1, backend=5001, frontend=8003),
        ]
    )
    server.ledger.write_bytes(dump_ledger(ledger))
    with server.client() as client:
        check = client.get("/v1/check")
        metrics = client.get("/metrics").text
    assert check.status_code == 409
    assert check.json() == {
        "ledger": str(server.ledger),
        "ok": False,
        "valid": True,
        "allocations": 2,
        "live_problems": [],
        "conflicts": [
            {
                "port": 5001,
                "holders": [
                    {"model": "a", "app_num": 1, "role": "backend"},
                    {"model": "b", "app_num": 1, "role": "backend"},
                ],
            }
        ],
    }
    # Keys earlier tests allocated, gone from the swapped-in ledger, keep their host leases: not usable here.
    service = PortAllocationService(server.ledger, probe=False, state_dir=server.ledger.parent / "state")
    assert metrics.startswith(prometheus_text(ledger, service.unusable_here()))


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/allocations/m/0", "app_num must be a whole number from 1 to 1,000,000, not '0'"),
        ("/v1/allocations/m/1_0", "app_num must be a whole number from 1 to 1,000,000, not '1_0'"),
        ("/v1/allocations/m/" + "9" * 5000, None),
        ("/v1/allocations/..%2Fetc/1", "model '../etc' contains a '.' or '..' path segment"),
        ("/v1/allocations/%20m/1", "model ' m' starts or ends with whitespace"),
        ("/v1/allocations/m%0Ax/1", "model 'm\\nx' contains the control character '\\n'"),
    ],
)
def test_invalid_keys_are_400_with_the_cli_message(server: ServerProcess, path: str, message: str | None) -> None:
    before = server.ledger.read_bytes() if server.ledger.exists() else b""
    with server.client() as client:
        response = client.put(path, headers=server.write_headers())
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_key"
    if message is not None:
        assert response.json()["detail"] == message
    assert (server.ledger.read_bytes() if server.ledger.exists() else b"") == before


def test_the_cli_prints_the_same_message(server: ServerProcess) -> None:
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(server.ledger), "get", "../etc", "1"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    with server.client() as client:
        response = client.put("/v1/allocations/..%2Fetc/1", headers=server.write_headers())
    assert done.returncode == 2
    assert response.json()["detail"] in done.stderr


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"keys": [{"model": "m", "app_num": 0}]}, "body.keys.0.app_num"),
        ({"keys": [{"model": "m"}]}, "body.keys.0.app_num"),
        ({"keys": "m"}, "body.keys"),
        ({"keys": [], "extra": 1}, "body.extra"),
        ([1, 2], "body"),
    ],
)
def test_a_bad_batch_body_is_422(server: ServerProcess, body: object, where: str) -> None:
    before = server.ledger.read_bytes() if server.ledger.exists() else b""
    with server.client() as client:
        response = client.post("/v1/allocations/batch", content=json.dumps(body), headers=server.write_headers())
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert response.json()["detail"].startswith(f"{where}: ")
    assert (server.ledger.read_bytes() if server.ledger.exists() else b"") == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"keys": [{"model": "m", "app_num": true}]}',
        b'{"keys": [{"model": "m", "app_num": "1"}]}',
        b'{"keys": [{"model": "m", "app_num": 1.0}]}',
        b'{"keys": [{"model": "m", "app_num": 2, "app_num": 1}]}',
        b'{"keys": [{"model": "x", "model": "m", "app_num": 1}]}',
        b'{"keys": [], "keys": [{"model": "m", "app_num": 1}]}',
    ],
)
def test_a_batch_is_refused_as_the_cli_refuses_its_json(server: ServerProcess, body: bytes) -> None:
    """``get-many --format json`` refuses these; the API once allocated m/1 for each (last name won)."""
    before = server.ledger.read_bytes() if server.ledger.exists() else b""
    with server.client() as client:
        response = client.post("/v1/allocations/batch", content=body, headers=server.write_headers())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert (server.ledger.read_bytes() if server.ledger.exists() else b"") == before


def test_a_model_filter_in_nfd_finds_the_nfc_key(server: ServerProcess) -> None:
    """``list --model cafe\u0301`` finds ``café`` (stored in NFC); so must ``?model=``."""
    with server.client() as client:
        put = client.put("/v1/allocations/caf\u00e9_filter/1", headers=server.write_headers())
        assert put.status_code in (200, 201), put.text
        listed = client.get("/v1/allocations", params={"model": "cafe\u0301_filter"}).json()
        status = client.get("/v1/status", params={"model": "cafe\u0301_filter"}).json()
    assert [(a["model"], a["app_num"]) for a in listed] == [("caf\u00e9_filter", 1)]
    assert [(a["model"], a["app_num"]) for a in status["allocations"]] == [("caf\u00e9_filter", 1)]


def test_a_look_alike_model_is_409_confusable_name(server: ServerProcess) -> None:
    with server.client() as client:
        first = client.put("/v1/allocations/lookalike_a/1", headers=server.write_headers())
        second = client.put("/v1/allocations/lookalike_\u0430/1", headers=server.write_headers())
    assert first.status_code in (200, 201), first.text
    assert second.status_code == 409, second.text
    assert second.json()["code"] == "confusable_name"
    assert "'lookalike_a'" in second.json()["detail"]


def test_broken_json_is_400_not_500(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.post("/v1/allocations/batch", content=b'{"keys": [', headers=server.write_headers())
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_unknown_paths_and_methods_answer_in_the_error_format(server: ServerProcess) -> None:
    with server.client() as client:
        missing = client.get("/v2/nothing")
        wrong_method = client.patch("/v1/allocations/m/1", headers=server.write_headers())
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")


@pytest.mark.usefixtures("swap_ledger")
def test_a_full_policy_is_409_no_free_pair(server: ServerProcess) -> None:
    policy = PortPolicy(backend_start=5001, frontend_start=5003, max_port=5003)  # exactly one pair
    full = Ledger(policy=policy, allocations=[Allocation(model="only", app_num=1, backend=5001, frontend=5003)])
    server.ledger.write_bytes(dump_ledger(full))
    with server.client() as client:
        response = client.put("/v1/allocations/one_more/1", headers=server.write_headers())
    assert response.status_code == 409
    assert response.json()["code"] == "no_free_pair"
    assert server.ledger.read_bytes() == dump_ledger(full)


@pytest.mark.usefixtures("swap_ledger")
def test_a_corrupt_ledger_is_409_and_never_overwritten(server: ServerProcess) -> None:
    server.ledger.write_bytes(b'{"version": 1, "allocations": [')
    with server.client() as client:
        read = client.get("/v1/allocations")
        write = client.put("/v1/allocations/x/1", headers=server.write_headers())
    for response in (read, write):
        assert response.status_code == 409
        assert response.json()["code"] == "ledger_corrupt"
        assert str(server.ledger) in response.json()["detail"]
    assert server.ledger.read_bytes() == b'{"version": 1, "allocations": ['


def test_a_lock_timeout_is_503_with_retry_after(server: ServerProcess) -> None:
    before = server.ledger.read_bytes()
    with locked(server.ledger), server.client() as client:  # another writer holds the ledger
        response = client.put("/v1/allocations/locked_out/1", headers=server.write_headers())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "ledger_locked"
    assert server.ledger.read_bytes() == before


# --- the unix socket, the command line, the stop ---------------------------------------------


def test_unix_socket_is_private_needs_no_token_and_is_removed_on_stop(tmp_path: Path) -> None:
    socket_path = tmp_path / "portalloc.sock"
    server = start_server(tmp_path, uds=socket_path)
    try:
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
        assert server.token is None
        with server.client() as client:
            created = client.put("/v1/allocations/uds_model/1", headers={"Content-Type": "application/json"})
            plain = client.post("/v1/allocations/batch", content=b"keys", headers={"Content-Type": "text/plain"})
            foreign = client.get("/v1/allocations", headers={"Host": "evil.example"})
        assert created.status_code == 201
        assert plain.status_code == 415  # the other rules still hold on a socket
        assert foreign.status_code == 403
        code, out, err = server.stop(signal.SIGINT)
    finally:
        kill_group(server)
    assert (code, err) == (0, "")
    assert out == "Stopped.\n"
    assert not socket_path.exists()


def test_sigterm_stops_with_an_event_stream_open(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        with server.client() as client, client.stream("GET", "/v1/events") as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("id: ")
            code, out, err = server.stop(signal.SIGTERM, timeout=5)
            with pytest.raises((StopIteration, httpx.HTTPError)):
                for _ in range(100):
                    next(lines)
    finally:
        kill_group(server)
    assert (code, out, err) == (0, "Stopped.\n", "")


def test_sigterm_lets_a_write_in_flight_finish(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    answers: list[int] = []
    try:
        with locked(server.ledger):  # the server's write waits for this lock: it is surely in flight
            client = server.client()
            writer = threading.Thread(
                target=lambda: answers.append(
                    client.put("/v1/allocations/in_flight/1", headers=server.write_headers()).status_code
                )
            )
            writer.start()
            time.sleep(1)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
        writer.join(timeout=15)
        client.close()
        # Wait for the exit that SIGTERM began; server.stop() would signal again, and a second
        # SIGTERM after uvicorn restored the default handlers killed a slow (loaded) server.
        out, err = server.process.communicate(timeout=30)
    finally:
        kill_group(server)
    assert answers == [201]
    assert (server.process.returncode, out, err) == (0, "Stopped.\n", "")
    assert [(row["model"], row["app_num"]) for row in _ledger_rows(server.ledger)] == [("in_flight", 1)]


def test_token_is_generated_0600_in_the_config_dir(tmp_path: Path) -> None:
    LedgerFile(tmp_path / "p.json").create(Ledger())
    config = tmp_path / "config"
    env = subprocess_env(XDG_CONFIG_HOME=str(config))
    process = subprocess.Popen(
        [portalloc_script(), "--ledger", str(tmp_path / "p.json"), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Serving ")
        token_file = config / "portalloc" / "token"
        assert process.stdout.readline() == f"Token file: {token_file}\n"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert len(token_file.read_text().strip()) >= 40
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--host", "192.0.2.1"],
            2,
            "Error: --host 192.0.2.1 is not a loopback address; name the token with --token-file",
        ),
        (["--uds", "s.sock", "--port", "1"], 2, "Error: --uds listens on a unix socket; it cannot be combined"),
        (["--token-file", "loose"], 1, "Error: the token file loose may be read by others (mode 0644); chmod 600 it"),
        (["--uds", "plain.txt"], 1, "Error: plain.txt exists and is not a socket; refusing to replace it"),
    ],
)
def test_unsafe_or_contradictory_options_are_refused(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    LedgerFile(tmp_path / "p.json").create(Ledger())
    before = (tmp_path / "p.json").read_bytes()
    (tmp_path / "loose").write_text("a-token\n")
    os.chmod(tmp_path / "loose", 0o644)
    (tmp_path / "plain.txt").write_text("keep me\n")
    done = subprocess.run(
        [portalloc_script(), "--ledger", "p.json", "serve", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=20,
    )
    assert done.returncode == code
    assert done.stderr.startswith(message)
    assert len(done.stderr.splitlines()) == 1
    assert (tmp_path / "plain.txt").read_text() == "keep me\n"
    assert (tmp_path / "p.json").read_bytes() == before


def test_a_corrupt_ledger_stops_the_server_before_it_makes_anything(tmp_path: Path) -> None:
    ledger = tmp_path / "p.json"
    ledger.write_bytes(b'{"version": 1, "allocations": [')
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(ledger), "serve", "--token-file", "new-token", "--uds", "new.sock"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=20,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {ledger}")
    assert len(done.stderr.splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["p.json"]
    assert ledger.read_bytes() == b'{"version": 1, "allocations": ['


def test_without_the_extra_help_works_and_serve_says_how_to_install(tmp_path: Path) -> None:
    hide = (
        "import sys; sys.modules['fastapi'] = sys.modules['uvicorn'] = None; "
        "from portalloc.cli.entry import main; main()"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", hide, *argv], capture_output=True, text=True, cwd=tmp_path, env=subprocess_env()
        )
        for argv in (["--help"], ["serve", "--port", "0"])
    ]
    assert runs[0].returncode == 0
    assert "serve" in runs[0].stdout
    assert runs[1].returncode == 1
    assert runs[1].stderr == (
        "Error: portalloc serve needs the 'serve' extra (uvicorn is missing): pip install 'portalloc[serve]'\n"
    )
