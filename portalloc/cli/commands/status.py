"""``portalloc status``: which of the ledger's ports are live on this machine now, and who holds them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_report, echo_table
from portalloc.cli.params import MODEL, json_option, pass_settings

if TYPE_CHECKING:
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
    from portalloc.reports import status_report

    service = settings.service()
    pairs = service.live_status(model)
    shared = service.shared_here(model)
    worktree = service.worktree()
    if as_json:
        echo_report(status_report(settings.ledger_path, pairs, shared, worktree))
        return 0
    if worktree is not None:
        click.echo(f"Worktree {worktree}: its own pairs where it has them (worktrees: separate)")
    if not pairs:
        click.echo(f"No allocations in {settings.ledger_path}.")
        return 0
    table = [("MODEL", "APP", "BACKEND", "FRONTEND")]
    table += [(pair.model, str(pair.app_num), _cell(pair.backend), _cell(pair.frontend)) for pair in pairs]
    echo_table(table, "<><<")
    ports = [port for pair in pairs for port in pair.ports]
    listening = sum(1 for port in ports if port.state is PortState.LISTENING)
    problems = [problem for pair in pairs for problem in pair.problems()]
    problems += [message for _, _, message in shared]
    click.echo(
        f"\n{listening} of {len(ports)} ports listening; {len(problems)} problem{'' if len(problems) == 1 else 's'}"
    )
    for problem in problems:
        click.echo(f"  {problem}")
    return 0


def _cell(report: PortReport) -> str:
    state = report.state.value
    if report.held:
        return f"{report.port} HELD by {report.holder_text() if report.holders else 'an unseen process'}"
    if state == "listening":
        return f"{report.port} listening: {', '.join(h.describe() for h in report.holders)}"
    return f"{report.port} {state}"
