"""HTTP's conventions (RFC 9110, RFC 9457) against a real server process: what curl habits and generated clients expect.

Body-less writes need no content type, ``HEAD`` works wherever ``GET`` does, a 405 names
the methods the path has, ``TRACE`` and unknown methods are refused as such, broken JSON
is 400 and well-formed but invalid JSON 422, a body a route does not take is refused,
and every error is ``application/problem+json`` with the CLI's code and message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")

from tests.serving import ServerProcess, kill_group, start_server  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module (each test uses its own model names)."""
    running = start_server(tmp_path_factory.mktemp("conventions"))
    yield running
    code, _, err = running.stop()
    kill_group(running)
    assert code == 0, err


def _bearer(server: ServerProcess) -> dict[str, str]:
    """What ``curl -H 'Authorization: Bearer …'`` sends: the token, no content type."""
    return {"Authorization": f"Bearer {server.token}"}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["type"], str) and body["type"]
    return body


def test_body_less_put_and_delete_with_only_a_bearer_token_work(server: ServerProcess) -> None:
    with server.client() as client:
        put = client.put("/v1/allocations/bodyless/1", headers=_bearer(server))
        assert put.status_code == 201, put.text
        delete = client.delete("/v1/allocations/bodyless/1", headers=_bearer(server))
        assert delete.status_code == 204, delete.text
        assert client.get("/v1/allocations/bodyless/1").status_code == 404


def test_a_body_still_needs_json_content_type(server: ServerProcess) -> None:
    before = server.ledger.read_bytes()
    with server.client() as client:
        response = client.post(
            "/v1/allocations/batch",
            content=b'{"keys": [{"model": "form", "app_num": 1}]}',
            headers={**_bearer(server), "Content-Type": "text/plain"},
        )
    _problem(response, 415, "unsupported_media_type")
    assert server.ledger.read_bytes() == before


def test_a_body_the_route_does_not_take_is_refused(server: ServerProcess) -> None:
    before = server.ledger.read_bytes()
    with server.client() as client:
        response = client.put(
            "/v1/allocations/with_body/1", content=b'{"backend": 6000}', headers=server.write_headers()
        )
    body = _problem(response, 400, "unexpected_body")
    assert "takes no request body" in str(body["detail"])
    assert server.ledger.read_bytes() == before


def test_head_answers_wherever_get_does(server: ServerProcess) -> None:
    with server.client() as client:
        client.put("/v1/allocations/head/1", headers=_bearer(server))
        for path in ("/v1/allocations", "/v1/allocations/head/1", "/v1/stats", "/healthz", "/openapi.json", "/metrics"):
            got, head = client.get(path), client.head(path)
            assert head.status_code == got.status_code == 200, path
            assert head.content == b""
            assert head.headers["content-type"] == got.headers["content-type"]
        assert client.head("/v1/allocations/head/404").status_code == 404
        # The endless event stream: HEAD gets its headers and an end, and the stream stops server-side.
        events = client.head("/v1/events")
        assert events.status_code == 200 and events.headers["content-type"].startswith("text/event-stream")
        assert client.get("/healthz").status_code == 200  # the connection is usable afterwards


def test_405_names_every_method_the_path_has(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.request("PATCH", "/v1/allocations/m/1", headers=_bearer(server))
        _problem(response, 405, "method_not_allowed")
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "PUT", "DELETE"}
        batch = client.get("/v1/allocations/batch")
        assert batch.status_code == 405
        assert batch.headers["allow"] == "POST"


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "BREW", "CONNECT"])
def test_trace_and_unknown_methods_are_405_not_401_or_5xx(server: ServerProcess, method: str) -> None:
    with server.client() as client:
        response = client.request(method, "/v1/allocations/m/1")  # no token: the method is refused first
    _problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"


def test_malformed_json_is_400_and_invalid_json_is_422(server: ServerProcess) -> None:
    with server.client() as client:
        broken = client.post("/v1/allocations/batch", content=b'{"keys": [', headers=server.write_headers())
        invalid = client.post("/v1/allocations/batch", content=b'{"keys": 3}', headers=server.write_headers())
    assert "not valid JSON" in str(_problem(broken, 400, "malformed_json")["detail"])
    assert str(_problem(invalid, 422, "invalid_request")["detail"]).startswith("body.keys: ")


def test_errors_are_problem_details_with_the_clis_code_and_message(server: ServerProcess) -> None:
    with server.client() as client:
        missing = client.get("/v1/allocations/never_asked/7")
        bad = client.put("/v1/allocations/m/0", headers=_bearer(server))
        unknown = client.get("/v2/nothing")
        host = client.get("/v1/allocations", headers={"Host": "attacker.example"})
    body = _problem(missing, 404, "not_found")
    assert str(body["detail"]).startswith("never_asked/7 has no allocation in ")
    assert body["instance"] == "/v1/allocations/never_asked/7"
    body = _problem(bad, 400, "invalid_key")
    assert body["detail"] == "app_num must be a whole number from 1 to 1,000,000, not '0'"
    _problem(unknown, 404, "not_found")
    _problem(host, 403, "forbidden_host")


def test_the_openapi_document_declares_the_bearer_token_and_is_indented(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.get("/openapi.json")
    assert b'\n  "' in response.content  # readable by a person, not one wall of text
    document = response.json()
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearer": {"type": "http", "scheme": "bearer"}}
    operations = [
        (path, method, operation) for path, item in document["paths"].items() for method, operation in item.items()
    ]
    for path, method, operation in operations:
        writes = method in ("put", "post", "delete")
        assert (operation.get("security") == [{"bearer": []}]) == writes, (path, method)
    put = document["paths"]["/v1/allocations/{model}/{app_num}"]["put"]
    assert "requestBody" not in put
    assert {"200", "201", "400", "401", "403", "412", "409", "503"} <= set(put["responses"])
    assert put["responses"]["400"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    listing = document["paths"]["/v1/allocations"]["get"]
    [model] = [p for p in listing["parameters"] if p["name"] == "model"]
    assert json.dumps(model["schema"], sort_keys=True).count('"maxLength"') == 1


def test_the_page_is_html_for_a_browser_and_406_for_a_client_that_wants_json(server: ServerProcess) -> None:
    with server.client() as client:
        page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        head = client.head("/")
        json_only = client.get("/", headers={"Accept": "application/json"})
        foreign = client.get("/", headers={"Host": "attacker.example"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert "<script src" not in page.text and "http" not in page.text.replace("http://localhost:", "")
    assert head.status_code == 200 and head.content == b""
    _problem(json_only, 406, "not_acceptable")
    _problem(foreign, 403, "forbidden_host")
