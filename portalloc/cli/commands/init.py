"""``portalloc init [PATH]``: create a ledger with a policy, and say what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.commands.policy import policy_changes, policy_options
from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import json_option, pass_settings

if TYPE_CHECKING:
    from portalloc.core.models import PortPolicy


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@policy_options
@json_option
@pass_settings
def init(settings: Settings, /, path: Path | None, as_json: bool, **options: Any) -> int:
    """Create the ledger (PATH, else --ledger or the default) with no allocations and this policy.

    Refused (exit 1) if a file exists there already; it is left as it was. Prints the
    capacity: pairs in range and pairs usable (and on this machine, when a range crosses
    the OS ephemeral range, which is warned about, naming it). Outside the root of a git repository, a
    write needs a ledger made this way first, so that a mistyped --ledger never starts a
    second ledger.

    \b
    Examples:
      portalloc init
      portalloc init apps/portalloc.json --backend-start 20001 --frontend-start 30001
    """
    from portalloc.core.models import build_policy
    from portalloc.reports import policy_report

    policy = build_policy(policy_changes(options))
    if path is not None:
        settings = settings._replace(ledger_path=path)
    service = settings.service()
    service.create_ledger(policy)
    _offer_a_free_range(settings, policy)
    report = policy_report(policy, service.unusable_here(policy))
    if as_json:
        echo_json({"ledger": str(settings.ledger_path), **report.model_dump(mode="json")})
        return 0
    click.echo(
        f"Created {settings.ledger_path}: {report.usable_pairs:,} usable pairs "
        f"({report.pairs:,} in range, {len(report.skipped)} skipped for a bad port{report.usable_here_note()}), "
        f"{policy.describe()}"
    )
    return 0


def _offer_a_free_range(settings: Settings, policy: PortPolicy) -> None:
    """Say on stderr when this machine already leases the new ledger's first pairs, and which range is free here.

    The ledger is created as asked either way (its bytes never depend on the machine).
    """
    from portalloc.errors import LeaseStoreUnavailable
    from portalloc.machine.identity import identify
    from portalloc.machine.leases import STORE_NAME, open_store, state_dir
    from portalloc.service.host_admin import free_start

    try:  # a note, never a failure: init needs no store
        if not settings.leases or not (state_dir() / STORE_NAME).exists():
            return
        offer = free_start(open_store(create=False), policy, identify(settings.ledger_path).repository)
    except LeaseStoreUnavailable:
        return
    if offer is not None:
        click.echo(
            f"Note: this machine already leases ports of {policy.backend_start}+/{policy.frontend_start}+ to "
            f"other repositories' ledgers; 'portalloc policy set --backend-start {offer[0]} "
            f"--frontend-start {offer[1]}' moves this one to a range free here",
            err=True,
        )
