"""``GET /v1/events``: one server-sent event per ledger change, whoever made it (the CLI included)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")

from tests.conftest import portalloc_script, subprocess_env  # noqa: E402
from tests.serving import kill_group, start_server  # noqa: E402


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs parsed from a text/event-stream."""
    name, data = "", ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and name:
            yield name, json.loads(data)
            name, data = "", ""


def _cli(ledger: Path, *args: str) -> None:
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(ledger), *args], capture_output=True, text=True, env=subprocess_env()
    )
    assert done.returncode == 0, done.stderr


def test_events_deliver_changes_made_by_the_cli_and_over_http(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    timeout = httpx.Timeout(10, read=10)
    try:
        with server.client() as client, client.stream("GET", "/v1/events", timeout=timeout) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = _events(stream.iter_lines())
            assert next(events) == ("ready", {"allocations": 0})

            _cli(server.ledger, "get", "cli_model", "1")
            name, data = next(events)
            assert name == "change"
            assert data == {
                "added": [{"model": "cli_model", "app_num": 1, "backend": 5001, "frontend": 8001}],
                "removed": [],
                "allocations": 1,
            }

            _cli(server.ledger, "fmt")  # rewrites the file, changes no allocation: no event
            with server.client() as writer:
                writer.put("/v1/allocations/http_model/1", headers=server.write_headers())
            name, data = next(events)
            assert (name, [a["model"] for a in data["added"]], data["removed"]) == ("change", ["http_model"], [])

            _cli(server.ledger, "release", "cli_model", "1")
            name, data = next(events)
            assert (name, data["added"], data["allocations"]) == ("change", [], 1)
            assert data["removed"] == [{"model": "cli_model", "app_num": 1, "backend": 5001, "frontend": 8001}]

            server.ledger.write_text("{ not json")
            name, data = next(events)
            assert (name, data["code"]) == ("error", "ledger_corrupt")
        code, _, err = server.stop()
    finally:
        kill_group(server)
    assert code == 0, err
