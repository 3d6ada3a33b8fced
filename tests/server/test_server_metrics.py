"""``/metrics`` against a real server: Prometheus text, or OpenMetrics when asked; read by the official parsers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from tests.serving import ServerProcess, kill_group, start_server

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("metrics"))
    yield running
    code, _, err = running.stop()
    kill_group(running)
    assert code == 0, err


def test_an_openmetrics_scrape_gets_openmetrics_with_eof(server: ServerProcess) -> None:
    with server.client() as client:
        client.put("/v1/allocations/scraped/1", headers={"Authorization": f"Bearer {server.token}"})
        client.get("/v1/allocations/scraped/1")
        client.head("/v1/allocations/scraped/1")
        response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"] == OPENMETRICS
    assert response.text.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(response.text)}  # raises on any format error
    for family in families.values():
        if family.type != "histogram":  # a histogram's buckets carry "le" by definition
            assert len({tuple(sorted(sample.labels)) for sample in family.samples}) <= 1, family.name
    requests = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in families["portalloc_http_requests"].samples
    }
    assert requests[("PUT", "/v1/allocations/{model}/{app_num}", "201")] >= 1
    assert requests[("GET", "/v1/allocations/{model}/{app_num}", "200")] >= 1
    assert requests[("HEAD", "/v1/allocations/{model}/{app_num}", "200")] >= 1
    histogram = {s.name: s.value for s in families["portalloc_http_request_duration_seconds"].samples if not s.labels}
    assert histogram["portalloc_http_request_duration_seconds_count"] >= 2
    assert families["portalloc_allocated_pairs"].samples[0].value >= 1


def test_a_plain_scrape_still_gets_the_0_0_4_text(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# EOF" not in response.text
    names = {family.name for family in parse_prometheus(response.text)}
    assert {"portalloc_allocated_pairs", "portalloc_http_requests", "portalloc_http_request_duration_seconds"} <= names
