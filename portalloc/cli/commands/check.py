"""``portalloc check [LEDGER…]``: exit 0 when the ledger is valid and conflict-free, 1 otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_report
from portalloc.cli.params import json_option, pass_settings
from portalloc.errors import PortallocError

if TYPE_CHECKING:
    from portalloc.core.audit import Conflict
    from portalloc.core.models import Ledger
    from portalloc.reports import LedgerCheck


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
@click.option(
    "--host",
    "on_host",
    is_flag=True,
    help="Also check this machine's host leases: a port of the ledger that another ledger or key has leased here "
    "(a problem on this machine, as --live's).",
)
@json_option
@pass_settings
def check(settings: Settings, ledgers: tuple[Path, ...], live: bool, on_host: bool, as_json: bool) -> int:
    """Validate the ledger (or each LEDGER given) and report every port or key used twice (exit 1 if any).

    Made for CI and pre-commit: exit 1 on a conflict or on a ledger that is missing, unreadable or
    invalid, one line per problem; exit 2 only for a mistyped command line. Apps outside their
    model's pool or on a reserved port are warned about on stderr (exit 0). With --json: one
    object, {"ok": …, "ledgers": [{"ledger", "ok", "valid", "allocations", "conflicts",
    "live_problems"}…]} (GET /v1/check answers one such ledger); errors and warnings stay on stderr.

    \b
    Examples:
      portalloc check                    # exit 0: no conflicts
      portalloc check a.json b.json      # several ledgers, as pre-commit passes them
    """
    from portalloc.reports import CheckReport, ledger_check

    findings: list[tuple[LedgerCheck, list[Conflict]]] = []
    for path in ledgers or (settings.ledger_path,):
        try:
            findings.append(_check_one(settings, path, live, on_host))
        except PortallocError as error:  # report it and go on to the next ledger
            click.echo(f"Error: {error}", err=True)
            findings.append((ledger_check(path, None), []))
    report = CheckReport(ok=all(found.ok for found, _ in findings), ledgers=[found for found, _ in findings])
    if as_json:
        echo_report(report)
    else:
        for found, conflicts in findings:
            _echo(found, conflicts, live)
    return 0 if report.ok else 1


def _echo(found: LedgerCheck, conflicts: list[Conflict], live: bool) -> None:
    """What ``check`` says of one ledger, for a person."""
    if not found.valid:
        return  # its Error: line is already out
    path, problems = found.ledger, found.live_problems
    for conflict in conflicts:
        click.echo(f"conflict: {conflict.describe()}")
    for problem in problems:
        click.echo(f"live: {problem}")
    if conflicts:
        click.echo(f"{len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''} in {path}")
    elif problems:
        click.echo(f"{len(problems)} live problem{'s' if len(problems) > 1 else ''} on this machine ({path})")
    else:
        count = found.allocations
        machine = ", no live problems on this machine" if live else ""
        click.echo(f"OK: {count:,} allocation{'' if count == 1 else 's'}, no conflicts{machine} ({path})")


def _check_one(settings: Settings, path: Path, live: bool, on_host: bool) -> tuple[LedgerCheck, list[Conflict]]:
    """The findings for one ledger, and its conflicts as the allocator found them (its warnings printed on stderr)."""
    from portalloc.reports import ledger_check

    if not path.exists():
        # A mistyped path must not pass a CI gate as "0 allocations, no conflicts".
        raise PortallocError(f"there is no ledger at {path}")
    service = settings._replace(ledger_path=path).service()
    conflicts = service.check_port_conflicts()
    for warning in service.policy_warnings():
        click.echo(f"Warning: {warning} ({path})", err=True)
    problems = [problem for pair in service.live_status() for problem in pair.problems()] if live else []
    if on_host:
        problems += _host_problems(path, service.ledger())
    return ledger_check(path, len(service.get_all_allocations()), conflicts, problems), conflicts


def _host_problems(path: Path, ledger: Ledger) -> list[str]:
    """Each port of the ledger that a live host lease of another key claims on this machine."""
    from portalloc.machine.leases import open_store
    from portalloc.service.host_admin import shared_ports

    return [message for _, _, message in shared_ports(open_store(), path, ledger)]
