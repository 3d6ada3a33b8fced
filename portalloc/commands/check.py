"""``portalloc check``: exit 0 when the ledger is valid and conflict-free, 1 otherwise."""

from __future__ import annotations

import click

from portalloc.commands.options import Settings, pass_settings


@click.command()
@pass_settings
def check(settings: Settings) -> int:
    """Validate the ledger and report every port or key used twice (exit 1 if any)."""
    service = settings.service()
    conflicts = service.check_port_conflicts()
    for conflict in conflicts:
        click.echo(f"conflict: {conflict.describe()}")
    count = len(service.get_all_allocations())
    if conflicts:
        click.echo(f"{len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''} in {settings.ledger_path}")
        return 1
    click.echo(f"OK: {count} allocation{'' if count == 1 else 's'}, no conflicts ({settings.ledger_path})")
    return 0
