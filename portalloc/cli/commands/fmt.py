"""``portalloc fmt [--check] [LEDGER…]``: rewrite ledgers in their canonical bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import json_option, pass_settings
from portalloc.errors import PortallocError


@click.command()
@click.option("--check", "check_only", is_flag=True, help="Only report; exit 1 if a ledger is not canonical.")
@json_option
@click.argument("ledgers", nargs=-1, metavar="[LEDGER]...", type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def fmt(settings: Settings, check_only: bool, as_json: bool, ledgers: tuple[Path, ...]) -> int:
    """Rewrite the ledger (or each LEDGER given) in canonical form: sorted, one allocation per line.

    With --check nothing is written and the exit status is 1 if any ledger is not
    canonical. CRLF line ends count as canonical (git with core.autocrlf=true checks
    the ledger out that way). A file that is not a valid ledger is reported, never
    written, and makes the exit status 1; the other ledgers are still formatted.

    \b
    Examples:
      portalloc fmt --check    # exit 1 if the ledger is not canonical
      portalloc fmt
    """
    from portalloc.storage.rewrite import format_file

    status = 0
    report: list[dict[str, Any]] = []
    for path in ledgers or (settings.ledger_path,):
        try:
            changed = format_file(path, check=check_only, lock_timeout=settings.lock_timeout)
        except PortallocError as error:  # report it and go on to the next ledger, as check does
            click.echo(f"Error: {error}", err=True)
            status = 1
            continue
        status = 1 if check_only and changed else status
        report.append({"ledger": str(path), "canonical": not changed, "reformatted": changed and not check_only})
        if as_json:
            continue
        if check_only:
            click.echo(f"{path}: {'not canonical; run `portalloc fmt`' if changed else 'canonical'}")
        else:
            click.echo(f"{path}: {'reformatted' if changed else 'already canonical'}")
    if as_json:
        echo_json(report)
    return status
