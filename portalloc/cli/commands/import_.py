"""``portalloc import FILE``: bring in the old SQLite table, a ``port_config.json``, another ledger or an export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import json_option, pass_settings

if TYPE_CHECKING:  # `portalloc --help` imports every command module, and must not import sqlite3
    from portalloc.integrations.importers import ImportOutcome
    from portalloc.integrations.sqlitesource import ReleasedWhen

_KINDS = {
    "sqlite": "SQLite port_configurations table",
    "port-config": "port_config.json list",
    "ledger": "portalloc ledger",
    "json": "export --format json",
    "csv": "export --format csv",
}


class _ReleasedWhen(click.ParamType):  # type: ignore[type-arg]
    """``COLUMN=VALUE``, read by ``ReleasedWhen.parse``."""

    name = "COLUMN=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from portalloc.integrations.sqlitesource import ReleasedWhen

        try:
            return ReleasedWhen.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.command(name="import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=True, readable=False), metavar="FILE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["sqlite", "ledger", "port-config", "json", "csv"]),  # importers.FORMATS (a test checks)
    default=None,
    help="What FILE is (default: detected). json and csv are what export writes.",
)
@click.option(
    "--released-when",
    type=_ReleasedWhen(),
    default=None,
    help="SQLite only: rows whose COLUMN reads as VALUE (yes/no) were released and are skipped, "
    "e.g. is_available=0. Default: every row is kept.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Refuse a source with more rows than this.",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=20.0,
    show_default=True,
    help="Seconds of reading an SQLite source before refusing it (a view may never end).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@json_option
@pass_settings
def import_allocations(
    settings: Settings,
    source: Path,
    fmt: str | None,
    released_when: ReleasedWhen | None,
    max_rows: int,
    time_limit: float,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Import allocations from FILE, each keeping its own ports when they are free and valid.

    FILE is the old SQLite database (its port_configurations table or view, opened
    read-only), a port_config.json list, another portalloc ledger, or what export
    writes (--format json or csv); which one is detected. Every row of the old table is
    kept unless --released-when says which rows were released. A row that clashes with
    the ledger, another row or the policy is skipped and reported, and an existing
    allocation is never overwritten. Exit 0 whenever FILE was read, however many rows
    were skipped; a source past --max-rows or --time-limit imports nothing (exit 1).

    \b
    Examples:
      portalloc import old_ports.db --dry-run
      portalloc import old_ports.db --released-when is_available=0
      portalloc import port_config.json
      portalloc export --format csv -o ports.csv && portalloc --ledger new.json import ports.csv
    """
    from portalloc.integrations.importers import read_import_rows
    from portalloc.integrations.sqlitesource import ReadLimits

    kind, rows = read_import_rows(source, fmt, limits=ReadLimits(max_rows, time_limit), released_when=released_when)
    report = settings.service().import_allocations(rows, dry_run=dry_run)
    counts = {status: report.count(status) for status in ("imported", "kept", "skipped")}
    if as_json:
        echo_json(
            {
                "source": str(source),
                "format": kind,
                "dry_run": dry_run,
                "released_when": released_when.describe() if released_when else None,
                "rows": len(report.outcomes),
                **counts,
                "skipped_by_reason": report.skipped_by_reason(),
                "skipped_rows": [_row_json(o) for o in report.outcomes if o.status == "skipped"],
                "noted_rows": [_row_json(o) for o in report.noted()],
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
    noted = report.noted()
    if noted:
        click.echo(f"  {len(noted)} {'would be' if dry_run else 'were'} imported with a note: {noted[0].why}")
    for outcome in noted:
        click.echo(
            f"  {outcome.row.where} {outcome.label()} {outcome.row.backend}/{outcome.row.frontend}: {outcome.reason}"
        )
    if dry_run:
        click.echo("Nothing written (--dry-run).")
    return 0


def _row_json(outcome: ImportOutcome) -> dict[str, Any]:
    """One row of ``import --json``'s ``skipped_rows`` or ``noted_rows``: where it was, what it held, why."""
    row = outcome.row
    return {
        "where": row.where,
        "model": row.model,
        "app_num": row.app_num,
        "backend": row.backend,
        "frontend": row.frontend,
        "why": outcome.why,
        "reason": outcome.reason,
    }
