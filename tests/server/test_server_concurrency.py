"""HTTP clients and CLI processes allocating at once through one ledger: nothing lost, no port twice."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("httpx", reason="httpx is not installed (pip install --group test)")

from tests.conftest import portalloc_script, subprocess_env
from tests.serving import kill_group, start_server

HTTP_CLIENTS, PER_CLIENT = 8, 12
CLI_PROCESSES, PER_PROCESS = 4, 5


def test_8_http_clients_and_4_cli_processes_lose_nothing(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    answers: dict[tuple[str, int], tuple[int, int]] = {}
    failures: list[str] = []
    start = threading.Barrier(HTTP_CLIENTS + CLI_PROCESSES)
    record = threading.Lock()

    def http_client(number: int) -> None:
        with server.client() as client:
            start.wait()
            for app_num in range(1, PER_CLIENT + 1):
                response = client.put(f"/v1/allocations/http_{number}/{app_num}", headers=server.write_headers())
                with record:
                    if response.status_code != 201:
                        failures.append(response.text)
                    else:
                        body = response.json()
                        answers[(body["model"], body["app_num"])] = (body["backend"], body["frontend"])

    def cli_process(number: int) -> None:
        start.wait()
        for app_num in range(1, PER_PROCESS + 1):
            model = f"cli_{number}"
            done = subprocess.run(
                [portalloc_script(), "--ledger", str(server.ledger), "get", model, str(app_num), "--json"],
                capture_output=True,
                text=True,
                env=subprocess_env(),
            )
            with record:
                if done.returncode != 0:
                    failures.append(done.stderr)
                else:
                    body = json.loads(done.stdout)
                    answers[(model, app_num)] = (body["backend"], body["frontend"])

    threads = [threading.Thread(target=http_client, args=(i,)) for i in range(HTTP_CLIENTS)]
    threads += [threading.Thread(target=cli_process, args=(i,)) for i in range(CLI_PROCESSES)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        code, _, err = server.stop()
    finally:
        kill_group(server)
    assert failures == []
    assert code == 0, err
    rows = json.loads(server.ledger.read_text())["allocations"]
    stored = {(row["model"], row["app_num"]): (row["backend"], row["frontend"]) for row in rows}
    assert len(answers) == HTTP_CLIENTS * PER_CLIENT + CLI_PROCESSES * PER_PROCESS
    assert stored == answers  # every answer given is in the ledger, and nothing else is
    ports = [port for pair in stored.values() for port in pair]
    assert len(ports) == len(set(ports))
