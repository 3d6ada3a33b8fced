"""``portalloc import FILE``: bring in the old SQLite table, a ``port_config.json`` or another ledger."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.cli.context import Settings, pass_settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import json_option

_KINDS = {
    "sqlite": "SQLite port_configurations table",
    "port-config": "port_config.json list",
    "ledger": "portalloc ledger",
}


@click.command(name="import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=True, readable=False), metavar="FILE")
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@json_option
@pass_settings
def import_allocations(settings: Settings, source: Path, dry_run: bool, as_json: bool) -> int:
    """Import allocations from FILE, each keeping its own ports when they are free and valid.

    FILE is the old SQLite database (its port_configurations table, opened read-only),
    a port_config.json list, or another portalloc ledger; which one is detected. A row
    that clashes with the ledger, another row or the policy is skipped and reported,
    and an existing allocation is never overwritten. Exit 0 whenever FILE was read,
    however many rows were skipped.

    \b
    Examples:
      portalloc import old_ports.db --dry-run
      portalloc import port_config.json
    """
    from portalloc.integrations.importers import read_import_rows

    kind, rows = read_import_rows(source)
    report = settings.service().import_allocations(rows, dry_run=dry_run)
    counts = {status: report.count(status) for status in ("imported", "kept", "skipped")}
    if as_json:
        echo_json(
            {
                "source": str(source),
                "format": kind,
                "dry_run": dry_run,
                "rows": len(report.outcomes),
                **counts,
                "skipped_by_reason": report.skipped_by_reason(),
                "skipped_rows": [
                    {
                        "where": o.row.where,
                        "model": o.row.model,
                        "app_num": o.row.app_num,
                        "backend": o.row.backend,
                        "frontend": o.row.frontend,
                        "why": o.why,
                        "reason": o.reason,
                    }
                    for o in report.outcomes
                    if o.status == "skipped"
                ],
            }
        )
        return 0
    verb = "Would import" if dry_run else "Imported"
    click.echo(
        f"{verb} {len(report.outcomes)} rows from {source} ({_KINDS[kind]}): "
        f"{counts['imported']} imported, {counts['kept']} already in the ledger, {counts['skipped']} skipped."
    )
    for why, count in report.skipped_by_reason().items():
        click.echo(f"  {count} skipped: {why}")
    for outcome in report.outcomes:
        if outcome.status == "skipped":
            pair = f"{outcome.row.backend}/{outcome.row.frontend}"
            click.echo(f"  {outcome.row.where} {outcome.label()} {pair}: {outcome.reason}")
    if dry_run:
        click.echo("Nothing written (--dry-run).")
    return 0
