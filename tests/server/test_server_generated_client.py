"""A client generated from the served OpenAPI document by openapi-python-client, driven against a real server.

The document is the contract: a client that knows only it (the bearer token, body-less
``PUT`` and ``DELETE``, the problem responses) allocates, reads, lists and releases.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")

from tests.serving import ServerProcess, kill_group, start_server  # noqa: E402

#: No post-generation hooks: the generator would run ruff, which a test run need not have.
GENERATOR_CONFIG = "post_hooks: []\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("generated"))
    yield running
    code, _, err = running.stop()
    kill_group(running)
    assert code == 0, err


@pytest.fixture(scope="module")
def generated(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The package openapi-python-client writes from the server's own ``/openapi.json``, imported."""
    where = tmp_path_factory.mktemp("client")
    with server.client() as client:
        (where / "openapi.json").write_bytes(client.get("/openapi.json").content)
    (where / "config.yaml").write_text(GENERATOR_CONFIG)
    command = [
        str(Path(sys.executable).with_name("openapi-python-client")),
        "generate",
        "--path",
        str(where / "openapi.json"),
        "--output-path",
        str(where / "portalloc_generated"),
        "--meta",
        "none",
        "--config",
        str(where / "config.yaml"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("portalloc_generated")
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name.startswith("portalloc_generated")]:
            del sys.modules[name]


def test_a_generated_client_allocates_reads_lists_and_releases(server: ServerProcess, generated: Any) -> None:
    from portalloc_generated.api.allocations import (  # type: ignore[import-not-found]
        delete_allocation,
        get_allocation,
        list_allocations,
        put_allocation,
    )
    from portalloc_generated.models import Problem, UsedPair  # type: ignore[import-not-found]

    client = generated.AuthenticatedClient(base_url=server.base_url, token=server.token)
    created = put_allocation.sync_detailed("openai/gpt-4o", 1, client=client)
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, UsedPair) and created.parsed.worktree is None  # the main work tree's pair
    pair = (created.parsed.backend, created.parsed.frontend)
    again = put_allocation.sync_detailed("openai/gpt-4o", 1, client=client, if_none_match="*")
    assert again.status_code == 412 and isinstance(again.parsed, Problem)
    assert again.parsed.code == "precondition_failed"

    read = get_allocation.sync("openai/gpt-4o", 1, client=client)
    assert isinstance(read, UsedPair) and (read.backend, read.frontend) == pair
    listed = list_allocations.sync(client=client, model="openai/gpt-4o")
    assert [(a.model, a.app_num, a.backend, a.frontend) for a in listed] == [("openai/gpt-4o", 1, *pair)]

    released = delete_allocation.sync_detailed("openai/gpt-4o", 1, client=client)
    assert released.status_code == 204, released.content
    missing = get_allocation.sync("openai/gpt-4o", 1, client=client)
    assert isinstance(missing, Problem) and missing.code == "not_found"


def test_a_generated_client_without_the_token_is_refused(server: ServerProcess, generated: Any) -> None:
    from portalloc_generated.api.allocations import put_allocation
    from portalloc_generated.models import Problem

    anonymous = generated.Client(base_url=server.base_url)
    refused = put_allocation.sync_detailed("anonymous", 1, client=anonymous)  # type: ignore[arg-type]
    assert refused.status_code == 401 and isinstance(refused.parsed, Problem)
    assert refused.parsed.code == "unauthorized"
