"""``portalloc init [PATH]``: create a ledger with a policy, and say what it holds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from portalloc.cli.commands.policy import policy_changes, policy_options
from portalloc.cli.context import Settings, pass_settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import json_option


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
        settings = dataclasses.replace(settings, ledger_path=path)
    service = settings.service()
    service.create_ledger(policy)
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
