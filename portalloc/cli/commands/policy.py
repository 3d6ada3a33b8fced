"""``portalloc policy`` and ``portalloc policy set``: what the ledger's policy is and gives, and changing it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_report
from portalloc.cli.params import json_option, pass_settings
from portalloc.core.limits import MAX_PORT, MIN_PORT

if TYPE_CHECKING:
    from portalloc.core.models import PortPolicy

F = TypeVar("F", bound=Callable[..., Any])

_PORT = click.IntRange(MIN_PORT, MAX_PORT)


def policy_options(function: F) -> F:
    """The policy's fields as options; each one left out keeps its current (or default) value."""
    for option in reversed(
        [
            click.option("--backend-start", type=_PORT, help="First backend port."),
            click.option("--frontend-start", type=_PORT, help="First frontend port (backends stay below it)."),
            click.option("--step", type=click.IntRange(min=1), help="Distance between one pair and the next."),
            click.option("--max-port", type=_PORT, help="Highest frontend port."),
            click.option(
                "--skip-bad-ports/--no-skip-bad-ports",
                default=None,
                help="Skip pairs with a port browsers refuse to connect to.",
            ),
            click.option(
                "--probe/--no-probe",
                "policy_probe",
                default=None,
                help="Let new allocations skip ports this machine holds (off: the ledger alone decides).",
            ),
            click.option(
                "--worktrees",
                type=click.Choice(["shared", "separate"]),
                help="What a linked git worktree uses: the ledger's pairs (shared), or pairs of its own "
                "leased on this machine and never committed (separate).",
            ),
        ]
    ):
        function = option(function)
    return function


def policy_changes(options: dict[str, Any]) -> dict[str, Any]:
    """The policy fields the user gave, by their names in the policy."""
    names = {"policy_probe": "probe"}
    return {names.get(name, name): value for name, value in options.items() if value is not None}


def echo_policy(policy: PortPolicy, unusable: frozenset[int], as_json: bool) -> None:
    """Print ``policy_report`` as JSON, or as lines for a person."""
    from portalloc.core.models import describe_ranges
    from portalloc.reports import policy_report

    report = policy_report(policy, unusable)
    if as_json:
        echo_report(report)
        return
    last_backend, last_frontend = policy.pair(policy.pair_count - 1)
    pools = "; ".join(pool.describe() for pool in policy.pools) or "none"
    lines = [
        ("Backends", f"{policy.backend_start}-{last_backend}, step {policy.step}"),
        ("Frontends", f"{policy.frontend_start}-{last_frontend} (max port {policy.max_port})"),
        ("Pairs", f"{report.pairs:,} in range, {report.usable_pairs:,} usable{report.usable_here_note()}"),
        ("Bad ports", "skipped" if policy.skip_bad_ports else "not skipped"),
        ("Probe", "on" if policy.probe else "off"),
        ("Worktrees", policy.worktrees),
        ("Reserved", describe_ranges(policy.reserved)),
        ("Pools", pools),
    ]
    width = max(len(name) for name, _ in lines) + 1
    for name, value in lines:
        click.echo(f"{name + ':':<{width}} {value}")
    for skipped in report.skipped:
        click.echo(f"skipped {skipped.backend}/{skipped.frontend}: {skipped.reason}")


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def policy(ctx: click.Context, as_json: bool) -> int:
    """Show the ledger's policy: its ranges, pairs, usable pairs, reserved ports, pools, and what is skipped.

    Usable pairs are counted in the policy and, when it differs, on this machine: a pair
    with a port in the OS ephemeral range, among the ports the OS reserves or leased here
    to another checkout's key (host leases) is never handed out here.

    \b
    Examples:
      portalloc policy
      portalloc policy set --max-port 20000
    """
    if ctx.invoked_subcommand is None:
        service = ctx.find_object(Settings).service()  # type: ignore[union-attr]
        policy = service.ledger().policy
        echo_policy(policy, service.unusable_here(policy), as_json)
    return 0


@policy.command(name="set")
@policy_options
@click.option(
    "--force",
    is_flag=True,
    help="Go ahead although a pool moves or an app ends up outside its pool or the sequence; says what moved.",
)
@json_option
@pass_settings
def set_policy(settings: Settings, /, as_json: bool, force: bool, **options: Any) -> int:
    """Change the policy; refused, naming them, if any existing allocation would not fit or stay unique.

    A change that fits but moves a pool (a new --step or start moves its ports), or puts
    an app outside its pool or off the sequence of pairs, is refused too, naming them,
    unless --force; then each move is a warning.

    \b
    Example:
      portalloc policy set --frontend-start 12001 --max-port 20999
    """
    changes = policy_changes(options)
    if not changes:
        raise click.UsageError("say what to change (--backend-start, --frontend-start, --step, --max-port, ...)")
    service = settings.service()
    policy = service.set_policy(force=force, **changes)
    echo_policy(policy, service.unusable_here(policy), as_json)
    return 0
