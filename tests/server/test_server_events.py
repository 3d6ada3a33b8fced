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
    for name, _, data in _events_with_ids(lines):
        yield name, data


def _events_with_ids(lines: Iterator[str]) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """``(event, id, data)`` triples parsed from a text/event-stream (``id`` ``None`` when the event has none)."""
    name, number, data = "", None, ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("id: "):
            number = int(line.removeprefix("id: "))
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and name:
            yield name, number, json.loads(data)
            name, number, data = "", None, ""


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


def _first(server: Any, count: int, last_event_id: str | None = None) -> list[tuple[str, int | None, dict[str, Any]]]:
    """The first ``count`` events of a new stream (sent with ``Last-Event-ID`` if given)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    timeout = httpx.Timeout(10, read=10)
    with server.client() as client, client.stream("GET", "/v1/events", headers=headers, timeout=timeout) as stream:
        found = _events_with_ids(stream.iter_lines())
        return [next(found) for _ in range(count)]


def test_event_ids_grow_across_reconnects_and_restarts_and_last_event_id_replays(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        timeout = httpx.Timeout(10, read=10)
        with server.client() as client, client.stream("GET", "/v1/events", timeout=timeout) as stream:
            events = _events_with_ids(stream.iter_lines())
            name, start, _ = next(events)
            assert name == "ready" and start is not None
            _cli(server.ledger, "get", "seen_model", "1")
            assert next(events)[:2] == ("change", start + 1)
        _cli(server.ledger, "get", "missed_model", "1")  # no stream is open: the client misses it
        # Reconnecting with the last id it saw, the client first gets what it missed, then ready.
        (name, number, data), ready = _first(server, 2, str(start + 1))
        assert (name, number, [a["model"] for a in data["added"]]) == ("change", start + 2, ["missed_model"])
        assert ready == ("ready", start + 2, {"allocations": 2})
        code, _, err = server.stop()
        assert code == 0, err
    finally:
        kill_group(server)
    # A new server on the same ledger and state directory: the ids go on from where they were.
    _cli(server.ledger, "release", "seen_model", "1")
    ledger_bytes = server.ledger.read_bytes()
    server = start_server(tmp_path)
    try:
        [(name, newest, data)] = _first(server, 1)
        assert (name, data) == ("ready", {"allocations": 1})
        assert newest is not None and newest > start + 2
        [(name, number, data)] = _first(server, 1, str(newest - 1))
        assert (name, number) == ("change", newest)
        assert data["removed"] == [{"model": "seen_model", "app_num": 1, "backend": 5001, "frontend": 8001}]
        [(name, number, _)] = _first(server, 1, "999999")  # from another journal: start over
        assert (name, number) == ("reset", newest)
        assert server.ledger.read_bytes() == ledger_bytes  # ids live in the state directory, never in the ledger
        assert list((tmp_path / "state" / "events").glob("*.json"))
        code, _, err = server.stop()
        assert code == 0, err
    finally:
        kill_group(server)
