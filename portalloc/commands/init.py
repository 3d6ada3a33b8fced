"""``portalloc init [PATH]``: create a new, empty ledger on purpose."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.commands.options import Settings, pass_settings


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def init(settings: Settings, path: Path | None) -> int:
    """Create an empty ledger at PATH (default: the ledger --ledger, PORTALLOC_LEDGER or discovery names).

    Refuses (exit 1) if a file exists there already; it is left as it was. Outside the
    root of a git repository, a write needs a ledger made this way first, so that a
    mistyped --ledger never starts a second ledger.
    """
    from portalloc.ledger import LedgerFile
    from portalloc.models import Ledger

    target = path if path is not None else settings.ledger_path
    ledger = Ledger()
    LedgerFile(target).create(ledger)
    click.echo(f"Created {target} ({ledger.policy.describe()})")
    return 0
