"""The ledger as a whole: ``/v1/check``, ``/v1/stats``, ``/v1/status`` (live), ``/v1/policy`` and ``/metrics``.

Each answers with the schema of ``portalloc.reports`` that the matching CLI command's
``--json`` dumps, built by the same function, so both faces say the same thing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from portalloc.core.keys import check_model_name
from portalloc.core.metrics import prometheus_text
from portalloc.reports import (
    LedgerCheck,
    PolicyReport,
    StatsReport,
    StatusReport,
    ledger_check,
    policy_report,
    stats_report,
    status_report,
)
from portalloc.server.openmetrics import exposition
from portalloc.server.schemas import describe_model_name
from portalloc.server.state import State
from portalloc.service.facade import PortAllocationService

router = APIRouter(tags=["reports"])


@router.get(
    "/v1/check",
    response_model=LedgerCheck,
    responses={409: {"model": LedgerCheck, "description": "The ledger has conflicts (or, with live, live problems)"}},
)
def check(state: State, live: Annotated[bool, Query()] = False) -> Any:
    """``portalloc check --json``'s report of this ledger: 200 when ``ok``, 409 with every conflict otherwise.

    ``live=true`` also looks at this machine, as ``check --live`` does.
    """

    def find(service: PortAllocationService) -> LedgerCheck:
        allocations = service.get_all_allocations()
        problems = [problem for pair in service.live_status() for problem in pair.problems()] if live else []
        return ledger_check(service.ledger_path, len(allocations), service.check_port_conflicts(), problems)

    report = state.read(find)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.ok else 409)


@router.get("/v1/stats")
def stats(state: State) -> StatsReport:
    """How full the ledger is: ``portalloc stats --json``."""
    ledger, unusable, worktree, own = state.read(
        lambda service: (service.ledger(), service.unusable_here(), service.worktree(), service.worktree_pairs())
    )
    return stats_report(state.service.ledger_path, ledger, unusable, worktree, len(own))


@router.get("/v1/status")
def status(
    state: State,
    model: Annotated[str | None, Query(description="Only this model's.", json_schema_extra=describe_model_name)] = None,
) -> StatusReport:
    """Each allocation's ports as this machine sees them now: ``portalloc status --json``."""
    if model is not None:
        model = check_model_name(model)  # NFC, as the ledger stores it
    pairs, shared, worktree = state.read(
        lambda service: (service.live_status(model), service.shared_here(model), service.worktree())
    )
    return status_report(state.service.ledger_path, pairs, shared, worktree)


@router.get("/v1/policy")
def policy(state: State) -> PolicyReport:
    """The ledger's policy and what it gives: ``portalloc policy --json``."""
    policy, unusable = state.read(lambda service: (policy := service.ledger().policy, service.unusable_here(policy)))
    return policy_report(policy, unusable)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}, "application/openmetrics-text": {}}}},
)
def metrics(state: State, request: Request, accept: Annotated[str | None, Header()] = None) -> Response:
    """The ledger's gauges (what ``stats --format prometheus`` prints) and the server's request figures.

    Prometheus text 0.0.4, or OpenMetrics 1.0 for ``Accept: application/openmetrics-text``.
    """
    ledger_text = prometheus_text(*state.read(lambda service: (service.ledger(), service.unusable_here())))
    body, media_type = exposition(ledger_text, request.app.state.request_metrics, accept)
    return Response(body, media_type=media_type)
