"""``portalloc check [LEDGER…]``: exit 0 when the ledger is valid and conflict-free, 1 otherwise."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from portalloc.commands.options import Settings, pass_settings
from portalloc.errors import PortallocError


@click.command()
@click.argument(
    # Not click.Path(exists=True): that exits 2, a usage error, where a missing ledger is a failed check (1).
    "ledgers",
    nargs=-1,
    metavar="[LEDGER]...",
    type=click.Path(path_type=Path),
)
@click.option(
    "--live",
    is_flag=True,
    help="Also check this machine: ledger ports held by something else, reserved, or in the ephemeral range.",
)
@pass_settings
def check(settings: Settings, ledgers: tuple[Path, ...], live: bool) -> int:
    """Validate the ledger (or each LEDGER given) and report every port or key used twice (exit 1 if any).

    Made for CI and pre-commit: exit 1 on a conflict or on a ledger that is missing, unreadable or
    invalid, one line per problem; exit 2 only for a mistyped command line.

    \b
    Examples:
      portalloc check                    # exit 0: no conflicts
      portalloc check a.json b.json      # several ledgers, as pre-commit passes them
    """
    status = 0
    for path in ledgers or (settings.ledger_path,):
        try:
            found = _check_one(settings, path, live)
        except PortallocError as error:  # report it and go on to the next ledger
            click.echo(f"Error: {error}", err=True)
            found = True
        status = 1 if found else status
    return status


def _check_one(settings: Settings, path: Path, live: bool) -> bool:
    """Print the findings for one ledger; ``True`` if there are any."""
    if not path.exists():
        # A mistyped path must not pass a CI gate as "0 allocations, no conflicts".
        raise PortallocError(f"there is no ledger at {path}")
    service = dataclasses.replace(settings, ledger_path=path).service()
    conflicts = service.check_port_conflicts()
    for conflict in conflicts:
        click.echo(f"conflict: {conflict.describe()}")
    count = len(service.get_all_allocations())
    problems = [problem for report in service.live_status() for problem in report.problems()] if live else []
    for problem in problems:
        click.echo(f"live: {problem}")
    if conflicts:
        click.echo(f"{len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''} in {path}")
        return True
    if problems:
        click.echo(f"{len(problems)} live problem{'s' if len(problems) > 1 else ''} on this machine ({path})")
        return True
    machine = ", no live problems on this machine" if live else ""
    click.echo(f"OK: {count} allocation{'' if count == 1 else 's'}, no conflicts{machine} ({path})")
    return False
