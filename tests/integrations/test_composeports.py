"""One ``ports`` entry (``integrations/composeports.py``), read as docker compose reads it, judged by compose itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portalloc.integrations.compose import load_project
from tests.compose_judge import compose_published, portalloc_published, verdict

#: Short-syntax entries beyond the fixtures, each judged by compose (accepted or refused).
SHORT_CASES = [
    "5001:80/TCP",
    "01:80",
    " 5001:80",
    "5001 :80",
    "65535:80",
    "65536:80",
    "9000-8000:80",
    "[::]:5002:80",
    "::1:6002:6002",
    "0.0.0.0:5003:80",
    "1.2.3.4:5004:80",
    "5005:80/sctp",
    "5006-5007:80-81/udp",
    "127.0.0.1::80",
    "${UNSET}:80",
    "$UNSET:80",
    "8000-9000:80",
    "80-81",
    "5008:80/",
    "/tcp",
    ":80",
    "5009:",
    "a:b",
]


@pytest.mark.compose
@pytest.mark.parametrize("entry", SHORT_CASES)
def test_short_syntax_entry_as_compose_reads_it(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(f"services:\n  web:\n    image: x\n    ports: [{json.dumps(entry)}]\n")
    assert verdict(portalloc_published, path) == verdict(compose_published, path)


def test_a_published_port_no_engine_can_bind_is_a_finding(tmp_path: Path) -> None:
    """The one place compose-check is stricter than ``compose config``, which passes it to fail at ``up``."""
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  w:\n    image: x\n    ports:\n      - {target: 80, published: 70000}\n")
    (finding,) = load_project([path], environ={}).invalid
    assert finding.message == "services.w.ports[0] {'target': 80, 'published': 70000}: invalid published: '70000'"
