"""``portalloc status``: which of the ledger's ports are live on this machine now, and who holds them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.options import MODEL, Settings, echo_json, echo_table, json_option, pair_json, pass_settings

if TYPE_CHECKING:
    from portalloc.core.models import Ledger
    from portalloc.machine.live import PortReport


@click.command()
@click.option("--model", type=MODEL, default=None, help="Only this model's apps.")
@json_option
@pass_settings
def status(settings: Settings, model: str | None, as_json: bool) -> int:
    """Show, for each allocation, whether its ports are listening and flag ports held by something else.

    A port counts as its app's own when the listening process has the port in its
    environment (portalloc run / env) or runs in a directory whose .env has this
    allocation's portalloc block (portalloc dotenv); see check --live to fail on findings.

    \b
    Examples:
      portalloc status --model model_a
      portalloc status --json
    """
    from portalloc.machine.probe import PortState

    service = settings.service()
    reports = service.live_status(model)
    pairs = list(zip(reports[::2], reports[1::2], strict=True))
    findings = [(_where_json(report), problem) for report in reports for problem in report.problems()]
    findings += _shared_here(settings, service.ledger(), model)
    problems = [problem for _, problem in findings]
    if as_json:
        echo_json(
            {
                "ledger": str(settings.ledger_path),
                "allocations": [
                    {
                        **pair_json(backend.model, backend.app_num, backend.port, frontend.port),
                        "live": {"backend": _port_json(backend), "frontend": _port_json(frontend)},
                    }
                    for backend, frontend in pairs
                ],
                "findings": [{**where, "message": problem} for where, problem in findings],
            }
        )
        return 0
    if not pairs:
        click.echo(f"No allocations in {settings.ledger_path}.")
        return 0
    table = [("MODEL", "APP", "BACKEND", "FRONTEND")]
    table += [(b.model, str(b.app_num), _cell(b), _cell(f)) for b, f in pairs]
    echo_table(table, "<><<")
    listening = sum(1 for report in reports if report.state is PortState.LISTENING)
    click.echo(
        f"\n{listening} of {len(reports)} ports listening; {len(problems)} problem{'' if len(problems) == 1 else 's'}"
    )
    for problem in problems:
        click.echo(f"  {problem}")
    return 0


def _shared_here(settings: Settings, ledger: Ledger, model: str | None) -> list[tuple[dict[str, Any], str]]:
    """Ports of the ledger that another key has leased on this machine (``host``), as findings.

    A read never fails because of the store: with none yet, leases off or a store that
    cannot be used, there is nothing to mark.
    """
    if not settings.leases:
        return []
    from portalloc.errors import LeaseStoreUnavailable
    from portalloc.machine.leases import STORE_NAME, open_store, state_dir
    from portalloc.service.host_admin import shared_ports

    try:
        if not (state_dir() / STORE_NAME).exists():
            return []
        shared = shared_ports(open_store(create=False), settings.ledger_path, ledger)
    except LeaseStoreUnavailable:
        return []
    return [
        (
            {
                "model": a.model,
                "app_num": a.app_num,
                "role": "backend" if port == a.backend else "frontend",
                "port": port,
            },
            message,
        )
        for a, port, message in shared
        if model is None or a.model == model
    ]


def _cell(report: PortReport) -> str:
    state = report.state.value
    if report.held:
        return f"{report.port} HELD by {report.holder_text() if report.holders else 'an unseen process'}"
    if state == "listening":
        return f"{report.port} listening: {', '.join(h.describe() for h in report.holders)}"
    return f"{report.port} {state}"


def _port_json(report: PortReport) -> dict[str, Any]:
    return {
        "state": report.state.value,
        "own": report.own,
        "held": report.held,
        "holders": [{"pid": holder.pid, "name": holder.name} for holder in report.holders],
    }


def _where_json(report: PortReport) -> dict[str, Any]:
    return {"model": report.model, "app_num": report.app_num, "role": report.role, "port": report.port}
