"""The request policy (``portalloc.server.policy``): each rule as a pure check, and against a real server.

Every refused request must leave the ledger byte-for-byte as it was.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")

from portalloc.server.methods import RouteFit
from portalloc.server.policy import MAX_BODY_BYTES, AccessPolicy, host_name
from tests.serving import ServerProcess, kill_group, start_server

TOKEN = "s3cret-token"
JSON = {"content-type": "application/json"}
AUTH = {"authorization": f"Bearer {TOKEN}"}


# --- the rules, one by one -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1:4790", "127.0.0.1"), ("[::1]:4790", "::1"), ("[::1]", "::1"), ("LocalHost", "localhost"),
     ("localhost:80", "localhost"), ("evil.example:80", "evil.example"), ("localhost.", "localhost.")],
)  # fmt: skip
def test_host_name_strips_the_port_and_brackets(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    "host",
    ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "localhost.", "127.0.0.2", "0.0.0.0", ""],
)
def test_a_host_that_is_not_loopback_is_refused_even_for_reads(host: str) -> None:
    refusal = AccessPolicy(TOKEN).check("GET", {"host": host})
    assert refusal is not None
    assert (refusal.status, refusal.code) == (403, "forbidden_host")


def test_a_missing_host_is_refused() -> None:
    refusal = AccessPolicy(TOKEN).check("GET", {})
    assert refusal is not None and refusal.code == "forbidden_host"


@pytest.mark.parametrize("host", ["127.0.0.1:4790", "localhost:4790", "[::1]:4790", "localhost"])
def test_loopback_hosts_may_read_without_a_token(host: str) -> None:
    assert AccessPolicy(TOKEN).check("GET", {"host": host}) is None


def test_the_host_given_to_host_is_allowed_too() -> None:
    policy = AccessPolicy(TOKEN, ["192.0.2.7"])
    assert policy.check("GET", {"host": "192.0.2.7:4790"}) is None
    assert policy.check("GET", {"host": "192.0.2.8:4790"}) is not None


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://127.0.0.1.evil.example", "null", "http://[::1", "file://"]
)
def test_a_foreign_origin_is_refused(origin: str) -> None:
    for method in ("GET", "POST"):
        refusal = AccessPolicy(TOKEN).check(method, {"host": "localhost:1", "origin": origin, **AUTH, **JSON})
        assert refusal is not None
        assert (refusal.status, refusal.code) == (403, "forbidden_origin")


@pytest.mark.parametrize("origin", ["http://127.0.0.1:4790", "http://localhost:4790", "https://[::1]:4790"])
def test_a_same_site_origin_is_allowed(origin: str) -> None:
    assert AccessPolicy(TOKEN).check("PUT", {"host": "localhost:4790", "origin": origin, **AUTH, **JSON}) is None


@pytest.mark.parametrize(
    ("authorization", "why"),
    [(None, "needs 'Authorization: Bearer <token>'"), ("Bearer wrong", "wrong"), ("Basic czNjcmV0", "needs"),
     ("Bearer ", "needs"), (f"Bearer {TOKEN}x", "wrong"), (f"bearer {TOKEN[:-1]}", "wrong")],
)  # fmt: skip
def test_a_state_change_needs_the_token(authorization: str | None, why: str) -> None:
    headers = {"host": "localhost", **JSON, **({"authorization": authorization} if authorization else {})}
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        refusal = AccessPolicy(TOKEN).check(method, headers)
        assert refusal is not None
        assert (refusal.status, refusal.code, refusal.headers) == (
            401,
            "unauthorized",
            (("WWW-Authenticate", "Bearer"),),
        )
        assert why in refusal.message


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"],
)
def test_a_state_change_with_a_body_needs_a_json_body(content_type: str | None) -> None:
    headers = {"host": "localhost", **AUTH, **({"content-type": content_type} if content_type else {})}
    for body in ({"content-length": "12"}, {"transfer-encoding": "chunked"}):
        refusal = AccessPolicy(TOKEN).check("POST", {**headers, **body})
        assert refusal is not None
        assert (refusal.status, refusal.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize("length", [None, "0"])
def test_a_body_less_state_change_needs_no_content_type(length: str | None) -> None:
    # Nothing a cross-site form could forge, and the Authorization header already forces a preflight.
    headers = {"host": "localhost", **AUTH, **({"content-length": length} if length else {})}
    for method in ("PUT", "DELETE", "POST"):
        assert AccessPolicy(TOKEN).check(method, headers) is None


def test_methods_the_path_lacks_are_405_with_allow_whatever_the_method() -> None:
    fit = RouteFit(frozenset({"GET", "HEAD", "PUT", "DELETE"}), takes_body=False)
    policy = AccessPolicy(TOKEN)
    for method in ("PATCH", "TRACE", "POST", "OPTIONS", "QUERY", "BREW"):
        refusal = policy.check(method, {"host": "localhost"}, fit)  # before the token is asked for
        assert refusal is not None
        assert (refusal.status, refusal.code, refusal.headers) == (
            405,
            "method_not_allowed",
            (("Allow", "DELETE, GET, HEAD, PUT"),),
        )


def test_a_body_is_refused_where_the_route_takes_none() -> None:
    headers = {"host": "localhost", **AUTH, **JSON, "content-length": "2"}
    refusal = AccessPolicy(TOKEN).check("PUT", headers, RouteFit(frozenset({"PUT"}), takes_body=False))
    assert refusal is not None and (refusal.status, refusal.code) == (400, "unexpected_body")
    assert AccessPolicy(TOKEN).check("POST", headers, RouteFit(frozenset({"POST"}), takes_body=True)) is None


def test_json_with_a_charset_passes_and_a_huge_body_is_413() -> None:
    headers = {"host": "localhost", **AUTH, "content-type": "Application/JSON; charset=utf-8"}
    policy = AccessPolicy(TOKEN)
    assert policy.check("POST", {**headers, "content-length": str(MAX_BODY_BYTES)}) is None
    refusal = policy.check("POST", {**headers, "content-length": str(MAX_BODY_BYTES + 1)})
    assert refusal is not None and (refusal.status, refusal.code) == (413, "body_too_large")


def test_without_a_token_state_changes_still_need_json() -> None:
    policy = AccessPolicy(None)
    assert policy.check("PUT", {"host": "localhost", **JSON, "content-length": "2"}) is None
    refusal = policy.check("PUT", {"host": "localhost", "content-type": "text/plain", "content-length": "2"})
    assert refusal is not None and refusal.status == 415


# --- against a real server: refused, and nothing written -------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("policy"))
    with running.client() as client:
        assert client.put("/v1/allocations/kept/1", headers=running.write_headers()).status_code == 201
    yield running
    running.stop()
    kill_group(running)


_BATCH = b'{"keys": [{"model": "attack", "app_num": 1}]}'
_MEDIA = "unsupported_media_type"
_JSON = {"Content-Type": "application/json"}
#: method, path, headers ("TOKEN" stands for the server's token), body, status, code.
ATTACKS = [
    ("PUT", "/v1/allocations/attack/1", {**_JSON, "Host": "evil.example", "Authorization": "TOKEN"}, None, 403,
     "forbidden_host"),
    ("PUT", "/v1/allocations/attack/1", {**_JSON, "Host": "127.0.0.1.nip.io", "Authorization": "TOKEN"}, None, 403,
     "forbidden_host"),
    ("PUT", "/v1/allocations/attack/1", {**_JSON, "Origin": "https://evil.example", "Authorization": "TOKEN"}, None,
     403, "forbidden_origin"),
    ("POST", "/v1/allocations/batch", {**_JSON, "Origin": "null", "Authorization": "TOKEN"}, _BATCH, 403,
     "forbidden_origin"),
    ("PUT", "/v1/allocations/attack/1", _JSON, None, 401, "unauthorized"),
    ("PUT", "/v1/allocations/attack/1", {**_JSON, "Authorization": "Bearer guess"}, None, 401, "unauthorized"),
    ("DELETE", "/v1/allocations/kept/1", _JSON, None, 401, "unauthorized"),
    # The cross-site "simple requests" a web page can send without a preflight:
    ("POST", "/v1/allocations/batch", {"Content-Type": "text/plain", "Authorization": "TOKEN"}, _BATCH, 415, _MEDIA),
    ("POST", "/v1/allocations/batch", {"Authorization": "TOKEN"}, _BATCH, 415, _MEDIA),
    ("DELETE", "/v1/allocations/kept/1", {"Content-Type": "text/plain", "Authorization": "TOKEN"}, b"x", 415, _MEDIA),
    # A body where the route takes none is refused, not ignored; a method the path lacks is 405.
    ("PUT", "/v1/allocations/attack/1", {**_JSON, "Authorization": "TOKEN"}, b'{"backend": 1}', 400,
     "unexpected_body"),
    ("TRACE", "/v1/allocations/kept/1", {}, None, 405, "method_not_allowed"),
    ("PATCH", "/v1/allocations/kept/1", {**_JSON, "Authorization": "TOKEN"}, b"{}", 405, "method_not_allowed"),
    # Not UTF-8 once decoded: the server would make U+FFFD of it, one key for many names.
    ("PUT", "/v1/allocations/%FF/1", {**_JSON, "Authorization": "TOKEN"}, None, 400, "invalid_url"),
    ("PUT", "/v1/allocations/caf%E9/1", {**_JSON, "Authorization": "TOKEN"}, None, 400, "invalid_url"),
    ("GET", "/v1/allocations?model=%FF", {}, None, 400, "invalid_url"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"), ATTACKS)
def test_refused_requests_change_nothing(
    server: ServerProcess, method: str, path: str, headers: dict[str, str], body: bytes | None, status: int, code: str
) -> None:
    headers = {name: f"Bearer {server.token}" if value == "TOKEN" else value for name, value in headers.items()}
    before = server.ledger.read_bytes()
    with server.client() as client:
        response = client.request(method, path, headers=headers, content=body)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert server.ledger.read_bytes() == before


def test_the_same_requests_done_right_are_served(server: ServerProcess) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    headers = {**server.write_headers(), "Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"}
    with server.client() as client:
        put = client.put("/v1/allocations/served/1", headers=headers)
        delete = client.delete("/v1/allocations/served/1", headers=headers)
    assert (put.status_code, delete.status_code) == (201, 204)
    with server.client() as client:  # the UTF-8 bytes of a non-ASCII name, percent-encoded, are a name
        put = client.put("/v1/allocations/caf%C3%A9/1", headers=server.write_headers())
    assert put.status_code == 201 and put.json()["model"] == "caf\u00e9", put.text
