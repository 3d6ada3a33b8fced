"""``portalloc check [LEDGER…]``: exit 0 when the ledger is valid and conflict-free, 1 otherwise."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.options import Settings, conflict_json, echo_json, json_option, pass_settings
from portalloc.errors import PortallocError

if TYPE_CHECKING:
    from portalloc.core.allocator import Conflict


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
@json_option
@pass_settings
def check(settings: Settings, ledgers: tuple[Path, ...], live: bool, as_json: bool) -> int:
    """Validate the ledger (or each LEDGER given) and report every port or key used twice (exit 1 if any).

    Made for CI and pre-commit: exit 1 on a conflict or on a ledger that is missing, unreadable or
    invalid, one line per problem; exit 2 only for a mistyped command line. Apps outside their
    model's pool or on a reserved port are warned about on stderr (exit 0). With --json: one
    object, {"ok": …, "ledgers": [{"ledger", "valid", "allocations", "conflicts",
    "live_problems"}…]}; errors and warnings stay on stderr.

    \b
    Examples:
      portalloc check                    # exit 0: no conflicts
      portalloc check a.json b.json      # several ledgers, as pre-commit passes them
    """
    findings = []
    for path in ledgers or (settings.ledger_path,):
        try:
            found = _check_one(settings, path, live)
        except PortallocError as error:  # report it and go on to the next ledger
            click.echo(f"Error: {error}", err=True)
            found = _Findings(path, valid=False)
        findings.append(found)
    ok = all(found.ok for found in findings)
    if as_json:
        echo_json({"ok": ok, "ledgers": [found.as_json() for found in findings]})
    else:
        for found in findings:
            found.echo(live)
    return 0 if ok else 1


@dataclass
class _Findings:
    """What ``check`` found in one ledger."""

    path: Path
    valid: bool = True
    allocations: int | None = None
    conflicts: list[Conflict] = field(default_factory=list)
    live_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.valid and not self.conflicts and not self.live_problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ledger": str(self.path),
            "valid": self.valid,
            "allocations": self.allocations,
            "conflicts": [conflict_json(c) for c in self.conflicts],
            "live_problems": self.live_problems,
        }

    def echo(self, live: bool) -> None:
        if not self.valid:
            return  # its Error: line is already out
        path, conflicts, problems = self.path, self.conflicts, self.live_problems
        for conflict in conflicts:
            click.echo(f"conflict: {conflict.describe()}")
        for problem in problems:
            click.echo(f"live: {problem}")
        if conflicts:
            click.echo(f"{len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''} in {path}")
        elif problems:
            click.echo(f"{len(problems)} live problem{'s' if len(problems) > 1 else ''} on this machine ({path})")
        else:
            count = self.allocations
            machine = ", no live problems on this machine" if live else ""
            click.echo(f"OK: {count:,} allocation{'' if count == 1 else 's'}, no conflicts{machine} ({path})")


def _check_one(settings: Settings, path: Path, live: bool) -> _Findings:
    """The findings for one ledger (its warnings printed on stderr)."""
    if not path.exists():
        # A mistyped path must not pass a CI gate as "0 allocations, no conflicts".
        raise PortallocError(f"there is no ledger at {path}")
    service = dataclasses.replace(settings, ledger_path=path).service()
    conflicts = service.check_port_conflicts()
    for warning in service.policy_warnings():
        click.echo(f"Warning: {warning} ({path})", err=True)
    problems = [problem for report in service.live_status() for problem in report.problems()] if live else []
    return _Findings(path, True, len(service.get_all_allocations()), conflicts, problems)
