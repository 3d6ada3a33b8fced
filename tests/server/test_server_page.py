"""``GET /``, the allocations page, in the system's headless Chromium against a real server and the real CLI.

No request is intercepted: Chromium loads the page from the server, the page reads
``/v1/status`` and listens to ``/v1/events``, and the test reads the DOM over the
DevTools protocol (``Runtime.evaluate``). A screenshot is taken; an allocation made by
the CLI appears without a reload; the filter narrows the rows; nothing is loaded from
elsewhere. Chromium is Debian's ``chromium`` package (``.ci/run`` installs it): missing
in CI (``CI=true``) the test fails; elsewhere it is skipped.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")
sync_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")

from tests.conftest import portalloc_script, subprocess_env  # noqa: E402
from tests.serving import ServerProcess, kill_group, start_server  # noqa: E402

#: How long to wait for the browser or the page to get somewhere (a bound, not a speed claim).
PATIENCE = 30.0


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs Debian's 'chromium' package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


class DevTools:
    """A DevTools protocol session with one page target, over its websocket."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result (events that arrive meanwhile are skipped)."""
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=PATIENCE))
            if message.get("id") == number:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + PATIENCE
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"the page never satisfied {expression}"
            time.sleep(0.1)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[str]:
    """A headless Chromium with remote debugging; the websocket URL of its page."""
    profile = tmp_path / "profile"
    process = subprocess.Popen(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1000,520", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + PATIENCE
        while not (active.exists() and active.read_text().count("\n") >= 1):
            assert process.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.05)
        port = active.read_text().split("\n")[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=PATIENCE).json()
        [target] = [t for t in targets if t["type"] == "page"]
        yield target["webSocketDebuggerUrl"]
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=PATIENCE)


def _cli(server: ServerProcess, *args: str) -> None:
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(server.ledger), *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_the_page_lists_every_allocation_and_follows_the_cli_live(tmp_path: Path, browser: str) -> None:
    server = start_server(tmp_path)
    try:
        _cli(server, "get", "model_a", "1")
        _cli(server, "get", "openai/gpt-4o", "1")
        with server.client() as client:
            backend = client.get("/v1/allocations/model_a/1").json()["backend"]
        with (
            socket.create_server(("127.0.0.1", backend)),  # model_a/1's backend listens, held by this process
            sync_client.connect(browser, max_size=None, open_timeout=PATIENCE) as devtools,
        ):
            page = DevTools(devtools)
            page.call("Page.enable")
            page.call("Page.navigate", url=f"{server.base_url}/")
            page.wait_for("document.querySelectorAll('tr[data-key]').length === 2")
            row = page.evaluate("document.querySelector('tr[data-key=\"model_a/1\"]').innerText")
            assert "listening" in row and str(os.getpid()) in row
            links = page.evaluate("[...document.querySelectorAll('a')].map(a => a.href)")
            assert f"http://localhost:{backend}/" in links and len(links) == 4
            shot = page.call("Page.captureScreenshot", format="png")["data"]
            (tmp_path / "page.png").write_bytes(base64.b64decode(shot))
            assert (tmp_path / "page.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
            if os.environ.get("PORTALLOC_PAGE_SCREENSHOT"):  # how misc/page.png is made
                shutil.copyfile(tmp_path / "page.png", os.environ["PORTALLOC_PAGE_SCREENSHOT"])

            page.evaluate("window.sameDocument = true")  # gone if the page reloads
            _cli(server, "get", "model_b", "2")
            page.wait_for("document.querySelector('tr[data-key=\"model_b/2\"]') !== null")
            _cli(server, "release", "openai/gpt-4o", "1")
            page.wait_for("document.querySelector('tr[data-key=\"openai/gpt-4o/1\"]') === null")
            assert page.evaluate("window.sameDocument") is True

            page.evaluate("const f = document.getElementById('filter'); f.value = 'model_b';"
                          "f.dispatchEvent(new Event('input'))")  # fmt: skip
            keys = page.evaluate("[...document.querySelectorAll('tr[data-key]')].map(r => r.dataset.key)")
            assert keys == ["model_b/2"]
            origins = page.evaluate("[...performance.getEntriesByType('resource')].map(e => new URL(e.name).origin)")
            assert set(origins) <= {server.base_url}, origins  # nothing from elsewhere
        code, _, err = server.stop()
    finally:
        kill_group(server)
    assert code == 0, err
