"""``/metrics`` for either scraper: the Prometheus text (0.0.4) or OpenMetrics 1.0 when asked for.

The ledger's gauges are ``core.metrics.prometheus_text`` (the text ``stats --format
prometheus`` prints: one source). The server adds its own: requests by method, route
and status (a counter), and the time to the response's headers (a histogram). A
scraper that sends ``Accept: application/openmetrics-text`` gets the OpenMetrics
exposition, which differs here only by the counter's family name (without ``_total``)
and the closing ``# EOF``.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Histogram bounds in seconds: a lookup takes about a millisecond, a write a few.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for OpenMetrics."""
    return accept is not None and "application/openmetrics-text" in accept.lower()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RequestMetrics:
    """Counts of the server's requests and a histogram of their latency, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total_seconds = 0.0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        with self._lock:
            self.requests[(method, route, str(status))] += 1
            self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.total_seconds += seconds

    def text(self, openmetrics: bool) -> str:
        """The server's families in either exposition format (no ``# EOF``)."""
        with self._lock:
            requests, buckets, total = dict(self.requests), list(self.buckets), self.total_seconds
        counter = "portalloc_http_requests" if openmetrics else "portalloc_http_requests_total"
        lines = [
            f"# HELP {counter} HTTP requests answered, by method, route and status.",
            f"# TYPE {counter} counter",
        ]
        for (method, route, status), count in sorted(requests.items()):
            labels = f'method="{_label(method)}",route="{_label(route)}",status="{status}"'
            lines.append(f"portalloc_http_requests_total{{{labels}}} {count}")
        name = "portalloc_http_request_duration_seconds"
        lines += [f"# HELP {name} Seconds from a request to its response's headers.", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, count in zip([*map(str, BUCKETS), "+Inf"], buckets, strict=True):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
        lines += [f"{name}_sum {total}", f"{name}_count {cumulative}"]
        return "\n".join(lines) + "\n"


def exposition(ledger_text: str, metrics: RequestMetrics, accept: str | None) -> tuple[str, str]:
    """The body and content type of ``/metrics`` for a scraper that sent ``accept``."""
    openmetrics = wants_openmetrics(accept)
    body = ledger_text + metrics.text(openmetrics)
    return (body + "# EOF\n", OPENMETRICS_TYPE) if openmetrics else (body, PROMETHEUS_TYPE)


class MeasureRequests:
    """ASGI middleware feeding a ``RequestMetrics``: the route's template (not the raw path) and the status."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count it when its response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                # The template bounds the label's values; a request no route took (404, refused) is "other".
                template = getattr(route, "path_format", None) or "other"
                self.metrics.observe(scope["method"], template, message["status"], time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, measured)
