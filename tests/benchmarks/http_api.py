"""The HTTP rows of the benchmark: ``portalloc serve`` driven by keep-alive httpx clients.

Named ``http_api`` (not ``http``): this directory is on ``sys.path`` when ``run.py``
runs, and a module called ``http`` would hide the standard library's from httpx.

One server process (probing on, as the in-process ``portalloc`` rows) serves a ledger of
1,000 allocations for the whole run. Each round, every row takes one sample:

* GET of an existing key and PUT of a new key, with one client and with 8 concurrent
  clients (threads of this process, one keep-alive connection each): the p50 and the
  p99 latency of the sample's requests (the p99 row shows the same sample's tail);
* 8 clients × 25 new keys at once: wall time, allocations lost (an answer the ledger
  does not hold) and ports held twice.

New keys are released again (untimed), so the ledger stays at 1,000 rows. The targets
compare these rows with the in-process API and the CLI rows of the same run.
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clis import console_script, environment
from stores import PortallocStore

CLIENTS, PER_CLIENT = 8, 25
PREFIX = "HTTP"


def available() -> str | None:
    """``None`` if the HTTP rows can run, else why not."""
    try:
        import fastapi  # noqa: F401
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (pip install --group test); no HTTP rows"
    return None


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class HttpBench:
    """A running ``portalloc serve`` and the samplers of the HTTP rows."""

    def __init__(self, workdir: Path, quick: bool) -> None:
        import httpx

        self.ledger = workdir / "http" / "portalloc.json"
        self.ledger.parent.mkdir()
        PortallocStore.create(self.ledger, 1000)
        self.process = subprocess.Popen(
            [console_script("portalloc"), "--ledger", str(self.ledger), "serve", "--port", "0", "--token-file",
             str(workdir / "http" / "token")],
            stdout=subprocess.PIPE,
            text=True,
            env=environment(),
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("Serving "):
            raise SystemExit(f"portalloc serve did not start: {line!r}")
        self.process.stdout.readline()  # the token file
        token = (workdir / "http" / "token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        base_url = line.rsplit(" on ", 1)[1].strip()
        self.clients = [httpx.Client(base_url=base_url, headers=headers, timeout=30) for _ in range(CLIENTS)]
        self.gets = 100 if quick else 400
        self.puts = 10 if quick else 25
        self.number = 0
        self.tails: dict[str, float] = {}

    def close(self) -> None:
        """Stop the server (SIGTERM, as a user would) and close the clients."""
        for client in self.clients:
            client.close()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)

    # samplers ---------------------------------------------------------------------------------

    def _fresh_keys(self, count: int) -> list[str]:
        self.number += 1
        return [f"/v1/allocations/http_new_{self.number}/{i}" for i in range(1, count + 1)]

    def _timed(self, client: Any, method: str, paths: list[str], latencies: list[float]) -> list[Any]:
        answers = []
        for path in paths:
            start = time.perf_counter()
            response = client.request(method, path)
            latencies.append(time.perf_counter() - start)
            if response.status_code not in (200, 201):
                raise SystemExit(f"HTTP {method} {path} failed: {response.status_code} {response.text}")
            answers.append(response.json())
        return answers

    def _run(self, method: str, clients: int, paths_of: Callable[[int], list[str]]) -> tuple[list[float], list[Any]]:
        """Each of ``clients`` sends its paths at once; every latency and answer."""
        latencies: list[float] = []
        answers: list[Any] = []
        barrier = threading.Barrier(clients)

        def work(index: int) -> None:
            mine: list[float] = []
            paths = paths_of(index)
            barrier.wait()
            got = self._timed(self.clients[index], method, paths, mine)
            latencies.extend(mine)
            answers.extend(got)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return latencies, answers

    def _release(self, answers: list[Any]) -> None:
        client = self.clients[0]
        for answer in answers:
            client.delete(f"/v1/allocations/{answer['model']}/{answer['app_num']}")

    def get_existing(self, label: str, clients: int) -> float:
        keys = [f"/v1/allocations/model_{i % 10}/{i // 10 + 1}" for i in range(0, 1000, 7)]
        per_client = self.gets // clients
        latencies, _ = self._run("GET", clients, lambda c: [keys[(c + j) % len(keys)] for j in range(per_client)])
        self.tails[label] = _percentile(latencies, 0.99)
        return statistics.median(latencies)

    def put_new(self, label: str, clients: int) -> float:
        paths = self._fresh_keys(self.puts * clients)
        latencies, answers = self._run("PUT", clients, lambda c: paths[c * self.puts : (c + 1) * self.puts])
        self._release(answers)
        self.tails[label] = _percentile(latencies, 0.99)
        return statistics.median(latencies)

    def concurrent(self, row: Any) -> float:
        """8 clients × 25 new keys at once: wall time; lost and duplicated allocations recorded on ``row``."""
        paths = self._fresh_keys(CLIENTS * PER_CLIENT)
        start = time.perf_counter()
        _, answers = self._run("PUT", CLIENTS, lambda c: paths[c * PER_CLIENT : (c + 1) * PER_CLIENT])
        elapsed = time.perf_counter() - start
        stored = {(a["model"], a["app_num"]): (a["backend"], a["frontend"]) for a in _rows(self.ledger)}
        lost = CLIENTS * PER_CLIENT - len(answers)
        lost += sum(1 for a in answers if stored.get((a["model"], a["app_num"])) != (a["backend"], a["frontend"]))
        ports = [port for pair in stored.values() for port in pair]
        row.lost.setdefault("portalloc", []).append(lost)
        row.duplicates.setdefault("portalloc", []).append(len(ports) - len(set(ports)))
        self._release(answers)
        return elapsed

    # the rows ---------------------------------------------------------------------------------

    def plan(
        self, row_type: Callable[..., Any], rounds: int, few: int
    ) -> list[tuple[Any, Callable[[str], float], int]]:
        """The HTTP rows (built with ``run.Row``), each with its sampler and rounds."""
        plan: list[tuple[Any, Callable[[str], float], int]] = []
        for verb, sampler in (("GET, existing key", self.get_existing), ("PUT, new key", self.put_new)):
            for clients in (1, CLIENTS):
                label = f"{PREFIX} {verb}, {clients} client{'s' if clients > 1 else ''} (n=1,000)"
                plan.append(
                    (
                        row_type(f"{label}, p50", ("portalloc",)),
                        lambda _c, key=label, n=clients, s=sampler: s(key, n),
                        rounds,
                    )
                )
                plan.append((row_type(f"{label}, p99", ("portalloc",)), lambda _c, key=label: self.tails[key], rounds))
        conc = row_type(f"{PREFIX}: {CLIENTS} clients × {PER_CLIENT} new keys at once", ("portalloc",))
        plan.append((conc, lambda _c: self.concurrent(conc), few))
        return plan  # fmt: skip


def _rows(ledger: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ledger.read_text())["allocations"]
    return rows


def targets(rows: list[Any]) -> list[tuple[str, str, bool]]:
    """The HTTP targets, as ratios of this run's medians (``rows`` are ``run.Row``)."""

    def row(prefix: str) -> Any:
        return next(r for r in rows if r.label.startswith(prefix))

    def median(prefix: str) -> float:
        value: float = row(prefix).median("portalloc")
        return value

    cli_get = median("CLI `get`, existing key")
    http_get = median(f"{PREFIX} GET, existing key, 1 client (n=1,000), p50")
    api_new = median("API new allocation (n=1,000)")
    conc_label = f"{PREFIX}: {CLIENTS} clients × {PER_CLIENT} new keys at once"
    http_rate = CLIENTS * PER_CLIENT / median(conc_label)
    lost, dup = max(row(conc_label).lost["portalloc"]), max(row(conc_label).duplicates["portalloc"])
    return [
        (
            "keep-alive HTTP GET (p50, 1 client) vs CLI `get` of an existing key: at least 20× faster",
            f"{cli_get / http_get:.1f}× faster (limit 20×; {http_get * 1e3:.2f} ms vs {cli_get * 1e3:.1f} ms)",
            cli_get / http_get >= 20,
        ),
        (
            f"{CLIENTS} concurrent HTTP clients allocating vs the in-process API: at least half its allocations/s, "
            "0 lost, 0 duplicates",
            f"{http_rate:.0f}/s vs {1 / api_new:.0f}/s = {http_rate * api_new:.2f} (limit 0.5); lost {lost}, dup {dup}",
            http_rate * api_new >= 0.5 and lost == 0 and dup == 0,
        ),
    ]


__all__ = ["HttpBench", "available", "targets"]
