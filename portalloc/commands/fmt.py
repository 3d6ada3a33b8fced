"""``portalloc fmt [--check] [LEDGER…]``: rewrite ledgers in their canonical bytes."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.commands.options import Settings, pass_settings


@click.command()
@click.option("--check", "check_only", is_flag=True, help="Only report; exit 1 if a ledger is not canonical.")
@click.argument("ledgers", nargs=-1, metavar="[LEDGER]...", type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def fmt(settings: Settings, check_only: bool, ledgers: tuple[Path, ...]) -> int:
    """Rewrite the ledger (or each LEDGER given) in canonical form: sorted, one allocation per line.

    With --check nothing is written and the exit status is 1 if any ledger is not
    canonical. A file that is not a valid ledger is an error and is never written.

    \b
    Examples:
      portalloc fmt --check    # exit 1 if the ledger is not canonical
      portalloc fmt
    """
    from portalloc.rewrite import format_file

    unformatted = 0
    for path in ledgers or (settings.ledger_path,):
        changed = format_file(path, check=check_only, lock_timeout=settings.lock_timeout)
        unformatted += changed
        if check_only:
            click.echo(f"{path}: {'not canonical; run `portalloc fmt`' if changed else 'canonical'}")
        else:
            click.echo(f"{path}: {'reformatted' if changed else 'already canonical'}")
    return 1 if check_only and unformatted else 0
