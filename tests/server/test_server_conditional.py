"""Conditional requests against a real server process: ``ETag``, ``If-Match``, ``If-None-Match`` (RFC 9110 §13).

An allocation's ``ETag`` comes from its own row, so an unrelated write leaves it valid;
the list has one too. ``PUT`` with ``If-None-Match: *`` allocates only a new key;
``If-Match`` on ``PUT``/``DELETE`` acts only on the pair the client saw. A failed
precondition is 412 and the ledger's bytes do not change.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")

from tests.conftest import portalloc_script, subprocess_env  # noqa: E402
from tests.serving import ServerProcess, kill_group, start_server  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module (each test uses its own model names)."""
    running = start_server(tmp_path_factory.mktemp("conditional"))
    yield running
    code, _, err = running.stop()
    kill_group(running)
    assert code == 0, err


def _auth(server: ServerProcess, **conditions: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {server.token}"}
    headers.update({name.replace("_", "-"): value for name, value in conditions.items()})
    return headers


def _cli(server: ServerProcess, *args: str) -> None:
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(server.ledger), *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr


def test_every_allocation_has_an_etag_that_an_unrelated_write_keeps(server: ServerProcess) -> None:
    with server.client() as client:
        put = client.put("/v1/allocations/etag_a/1", headers=_auth(server))
        tag = put.headers["etag"]
        assert tag.startswith('"') and tag.endswith('"')
        assert client.get("/v1/allocations/etag_a/1").headers["etag"] == tag
        assert client.head("/v1/allocations/etag_a/1").headers["etag"] == tag
        list_tag = client.get("/v1/allocations").headers["etag"]
        _cli(server, "get", "etag_unrelated", "1")
        assert client.get("/v1/allocations/etag_a/1").headers["etag"] == tag
        assert client.get("/v1/allocations").headers["etag"] != list_tag
        assert client.get("/v1/allocations/etag_a/1", headers={"If-None-Match": tag}).status_code == 304


def test_if_none_match_star_allocates_only_a_new_key(server: ServerProcess) -> None:
    with server.client() as client:
        first = client.put("/v1/allocations/only_new/1", headers=_auth(server, If_None_Match="*"))
        assert first.status_code == 201, first.text
        before = server.ledger.read_bytes()
        again = client.put("/v1/allocations/only_new/1", headers=_auth(server, If_None_Match="*"))
    assert again.status_code == 412, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "precondition_failed"
    assert server.ledger.read_bytes() == before


def test_if_match_releases_only_the_pair_the_client_saw(server: ServerProcess) -> None:
    with server.client() as client:
        seen = client.put("/v1/allocations/release_seen/1", headers=_auth(server)).headers["etag"]
        before = server.ledger.read_bytes()
        for wrong in ('"nonsense"', 'W/"' + seen.strip('"') + '"'):  # a weak tag never matches (strong comparison)
            refused = client.delete("/v1/allocations/release_seen/1", headers=_auth(server, If_Match=wrong))
            assert refused.status_code == 412, refused.text
            assert refused.json()["code"] == "precondition_failed"
        assert server.ledger.read_bytes() == before
        # Another tool releases and the key is allocated again on another pair: the old tag is stale.
        _cli(server, "get", "release_seen_block", "1")
        _cli(server, "release", "release_seen", "1")
        _cli(server, "get", "release_grab", "1")
        fresh = client.put("/v1/allocations/release_seen/1", headers=_auth(server))
        assert fresh.headers["etag"] != seen
        stale = client.delete("/v1/allocations/release_seen/1", headers=_auth(server, If_Match=seen))
        assert stale.status_code == 412
        done = client.delete(
            "/v1/allocations/release_seen/1", headers=_auth(server, If_Match=f'"x", {fresh.headers["etag"]}')
        )
        assert done.status_code == 204, done.text
        gone = client.delete("/v1/allocations/release_seen/1", headers=_auth(server, If_Match="*"))
        # Without a pair the DELETE is a 404 whatever the condition (RFC 9110 §13.2.1: preconditions are ignored).
        assert gone.status_code == 404


def test_if_match_on_put_needs_the_current_pair(server: ServerProcess) -> None:
    with server.client() as client:
        missing = client.put("/v1/allocations/put_match/1", headers=_auth(server, If_Match="*"))
        assert missing.status_code == 412
        assert client.get("/v1/allocations/put_match/1").status_code == 404  # nothing was allocated
        tag = client.put("/v1/allocations/put_match/1", headers=_auth(server)).headers["etag"]
        assert client.put("/v1/allocations/put_match/1", headers=_auth(server, If_Match=tag)).status_code == 200
        assert client.put("/v1/allocations/put_match/1", headers=_auth(server, If_Match='"old"')).status_code == 412


def test_two_servers_racing_if_none_match_star_create_each_key_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Two server processes on one ledger, each asked to allocate the same new keys "only if new" at
    # the same moment: the condition is checked under the ledger's lock, so per key exactly one 201.
    first_dir, second_dir = tmp_path_factory.mktemp("race_a"), tmp_path_factory.mktemp("race_b")
    first = start_server(first_dir)
    second = start_server(second_dir, ledger=first.ledger)
    keys = [f"race/{n}" for n in range(1, 21)]
    try:
        clients = [first.client(), second.client()]

        def put(which: int, key: str) -> tuple[str, int, str]:
            server = (first, second)[which]
            response = clients[which].put(f"/v1/allocations/{key}", headers=_auth(server, If_None_Match="*"))
            return key, response.status_code, response.text

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda job: put(*job), [(which, key) for key in keys for which in (0, 1)]))
        for client in clients:
            client.close()
        statuses = {key: sorted(status for k, status, _ in results if k == key) for key in keys}
        assert all(found == [201, 412] for found in statuses.values()), results
        rows = json.loads(first.ledger.read_text())["allocations"]
        ports = [port for row in rows for port in (row["backend"], row["frontend"])]
        assert len(rows) == len(keys) and len(set(ports)) == len(ports)
        for server in (first, second):
            code, _, err = server.stop()
            assert code == 0, err
    finally:
        kill_group(first)
        kill_group(second)
