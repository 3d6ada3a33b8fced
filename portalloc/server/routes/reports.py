"""The ledger as a whole: ``/v1/check``, ``/v1/stats``, ``/v1/status`` (live) and ``/metrics``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from portalloc.core import allocator
from portalloc.core.keys import check_model_name
from portalloc.core.metrics import prometheus_text
from portalloc.machine.live import PortReport
from portalloc.server.schemas import (
    CheckReport,
    ConflictHolder,
    ConflictReport,
    Finding,
    Holder,
    LiveAllocation,
    LivePair,
    LivePort,
    StatsReport,
    StatusReport,
)
from portalloc.server.state import State

router = APIRouter(tags=["reports"])


@router.get("/v1/check", responses={409: {"model": CheckReport, "description": "The ledger has conflicts"}})
def check(state: State) -> Any:
    """200 with ``ok: true`` when no port or key is held twice; 409 with every conflict otherwise."""
    ledger = state.call(lambda service: service.ledger())
    conflicts = [_conflict_report(conflict) for conflict in allocator.find_conflicts(ledger.allocations)]
    report = CheckReport(ok=not conflicts, allocations=len(ledger.allocations), conflicts=conflicts)
    return JSONResponse(report.model_dump(), status_code=409 if conflicts else 200)


def _conflict_report(conflict: allocator.Conflict) -> ConflictReport:
    """A conflict with its holders as ``{model, app_num, role}`` objects, as ``check --json`` prints it."""
    holders = [ConflictHolder(model=h.model, app_num=h.app_num, role=h.role) for h in conflict.holders]
    return ConflictReport(port=conflict.port, holders=holders)


@router.get("/v1/stats")
def stats(state: State) -> StatsReport:
    """How full the ledger is: the keys of ``portalloc stats --json``."""
    usage, ledger = state.call(lambda service: (service.stats(), service.ledger()))
    return StatsReport(ledger=str(state.service.ledger_path), **usage._asdict(), policy=ledger.policy)


@router.get("/v1/status")
def status(state: State, model: Annotated[str | None, Query()] = None) -> StatusReport:
    """Each allocation's ports as this machine sees them now: the keys of ``portalloc status --json``."""
    if model is not None:
        model = check_model_name(model)  # NFC, as the ledger stores it
    reports = state.call(lambda service: service.live_status(model))
    pairs = zip(reports[::2], reports[1::2], strict=True)
    return StatusReport(
        ledger=str(state.service.ledger_path),
        allocations=[
            LiveAllocation(
                model=b.model,
                app_num=b.app_num,
                backend=b.port,
                frontend=f.port,
                live=LivePair(backend=_live_port(b), frontend=_live_port(f)),
            )
            for b, f in pairs
        ],
        findings=[
            Finding(model=r.model, app_num=r.app_num, role=r.role, port=r.port, message=problem)
            for r in reports
            for problem in r.problems()
        ],
    )


def _live_port(report: PortReport) -> LivePort:
    return LivePort(
        state=report.state.value,
        own=report.own,
        held=report.held,
        holders=[Holder(pid=h.pid, name=h.name) for h in report.holders],
    )


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def metrics(state: State) -> Response:
    """The ledger's gauges in the Prometheus text format (what ``stats --format prometheus`` prints)."""
    text = prometheus_text(state.call(lambda service: service.ledger()))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
