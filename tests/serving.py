"""A real ``portalloc serve`` process for the server tests: start it, talk to it, stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from portalloc.core.models import Ledger
from portalloc.storage.ledger import LedgerFile
from tests.conftest import portalloc_script, subprocess_env


@dataclass
class ServerProcess:
    """A running server: where it listens, its token, its ledger, and the process."""

    process: subprocess.Popen[str]
    base_url: str
    token: str | None
    ledger: Path
    uds: Path | None = None

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client bound to the server (keep-alive), without credentials."""
        transport = httpx.HTTPTransport(uds=str(self.uds)) if self.uds else None
        return httpx.Client(base_url=self.base_url, transport=transport, timeout=10, **kwargs)  # type: ignore[arg-type]

    def write_headers(self) -> dict[str, str]:
        """What a legitimate state change sends: the token (if any) and a JSON content type."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, str, str]:
        """Send ``sig`` and wait; the exit code and the rest of stdout and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err


def start_server(
    tmp: Path,
    *args: str,
    ledger: Path | None = None,
    uds: Path | None = None,
    env: dict[str, str] | None = None,
    create: bool = True,
) -> ServerProcess:
    """``portalloc --ledger LEDGER [ARGS…] serve`` on an ephemeral port (or ``uds``) with a token file in ``tmp``.

    ``args`` are global options (``--lock-timeout 0.5``). A missing ledger is created first, as
    ``portalloc init`` would (the CLI writes only to a ledger that exists) unless ``create`` is
    false. Returns once
    ``/healthz`` answers.
    """
    ledger = ledger or tmp / "portalloc.json"
    if create and not os.path.lexists(ledger):
        LedgerFile(ledger).create(Ledger())
    listen = ["--uds", str(uds)] if uds else ["--port", "0", "--token-file", str(tmp / "token")]
    process = subprocess.Popen(
        [portalloc_script(), "--ledger", str(ledger), *args, "serve", *listen],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # The server's machine state (the event journal) lives in the test's own directory.
        env=env or subprocess_env(PORTALLOC_STATE_DIR=str(tmp / "state")),
        start_new_session=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    second = process.stdout.readline()
    if not first.startswith("Serving "):
        process.kill()
        raise AssertionError(f"the server did not start: {first!r} {process.communicate()}")
    address = first.rsplit(" on ", 1)[1].strip()
    token = (tmp / "token").read_text().strip() if second.startswith("Token file:") else None
    server = ServerProcess(process, "http://localhost" if uds else address, token, ledger, uds)
    deadline = time.monotonic() + 10
    with server.client() as client:
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)


def kill_group(server: ServerProcess) -> None:
    """Make sure the server is gone (teardown of a test that failed half-way)."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
