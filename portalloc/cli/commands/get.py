"""``portalloc get MODEL APP_NUM``: print the pair, allocating it if new."""

from __future__ import annotations

import click

from portalloc.cli.context import Settings
from portalloc.cli.pairtext import get_text
from portalloc.cli.params import json_option, key_arguments, pass_settings


@click.command()
@key_arguments
@json_option
@click.option(
    "--field",
    type=click.Choice(("backend", "frontend")),
    default=None,
    help="Print only this port, as a bare number for shell use.",
)
@pass_settings
def get(settings: Settings, model: str, app_num: int, as_json: bool, field: str | None) -> int:
    """Print the port pair of MODEL's app APP_NUM, allocating the lowest free pair if it has none.

    In a linked git worktree whose ledger says worktrees: separate, the pair is the
    worktree's own (leased on this machine, never committed), and says so.

    \b
    Examples:
      portalloc get model_a 1                        # model_a/1: backend 5001, frontend 8001
      portalloc get model_a 1 --field backend        # 5001
      portalloc --ledger ./portalloc.json get model_a 1 --json
    """
    if as_json and field is not None:
        raise click.UsageError("--json and --field cannot be used together")
    used = settings.pair_for(model, app_num, say_worktree=field is not None)
    click.echo(get_text(model, app_num, used, as_json=as_json, field=field))
    return 0
