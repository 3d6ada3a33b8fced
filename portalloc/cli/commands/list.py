"""``portalloc list``: every allocation, as a table or JSON."""

from __future__ import annotations

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_report, echo_table
from portalloc.cli.params import MODEL, json_option, pass_settings


@click.command(name="list")
@click.option("--model", type=MODEL, default=None, help="Only this model's apps.")
@click.option(
    "--committed",
    is_flag=True,
    help="The ledger's pairs, even in a linked worktree that uses pairs of its own (worktrees: separate).",
)
@json_option
@pass_settings
def list_allocations(settings: Settings, model: str | None, committed: bool, as_json: bool) -> int:
    """List allocations sorted by model and app number, with the pairs this work tree uses.

    In a linked git worktree whose ledger says worktrees: separate, a key that has a
    pair of the worktree's own shows it, marked with the worktree (--committed: the
    ledger's pairs). Listing never chooses a pair.

    \b
    Examples:
      portalloc list --model model_a
      portalloc list --json | jq -r '.[].backend'
    """
    from portalloc.reports import used_pair

    service = settings.service()
    pairs = service.get_all_allocations() if committed else service.pairs_in_use()
    rows = [used_pair(a) for a in pairs if model is None or a.model == model]
    if as_json:
        echo_report(rows)
        return 0
    if not rows:
        click.echo(f"No allocations in {settings.ledger_path}.")
        return 0
    table: list[tuple[str, ...]] = [("MODEL", "APP", "BACKEND", "FRONTEND", "WORKTREE")]
    table += [(a.model, str(a.app_num), str(a.backend), str(a.frontend), a.worktree or "") for a in rows]
    if all(a.worktree is None for a in rows):
        table = [row[:4] for row in table]  # the column appears where it says something
    echo_table(table, "<>>><"[: len(table[0])])
    return 0
