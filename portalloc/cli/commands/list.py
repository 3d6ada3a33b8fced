"""``portalloc list``: every allocation, as a table or JSON."""

from __future__ import annotations

import click

from portalloc.cli.context import Settings, pass_settings
from portalloc.cli.output import echo_report, echo_table
from portalloc.cli.params import MODEL, json_option


@click.command(name="list")
@click.option("--model", type=MODEL, default=None, help="Only this model's apps.")
@json_option
@pass_settings
def list_allocations(settings: Settings, model: str | None, as_json: bool) -> int:
    """List allocations sorted by model and app number.

    \b
    Examples:
      portalloc list --model model_a
      portalloc list --json | jq -r '.[].backend'
    """
    rows = [a for a in settings.service().get_all_allocations() if model is None or a.model == model]
    if as_json:
        echo_report(rows)
        return 0
    if not rows:
        click.echo(f"No allocations in {settings.ledger_path}.")
        return 0
    table = [("MODEL", "APP", "BACKEND", "FRONTEND")]
    table += [(a.model, str(a.app_num), str(a.backend), str(a.frontend)) for a in rows]
    echo_table(table, "<>>>")
    return 0
