"""``portalloc pool add|remove|list``: pairs of the sequence that only one model takes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json, echo_table
from portalloc.cli.params import MODEL, PORT_RANGE, Span, json_option, pass_settings

if TYPE_CHECKING:
    from portalloc.core.models import PortPolicy


@click.group(invoke_without_command=True)
@click.pass_context
def pool(ctx: click.Context) -> None:
    """Give a model its own pairs: its new apps take them first, and no other model ever does.

    \b
    Examples:
      portalloc pool add model_big --pairs 100-199 --overflow shared
      portalloc pool list
    """
    if ctx.invoked_subcommand is None:
        # click would print the whole help as the error; one line is the contract.
        raise click.UsageError("say what to do: pool add, pool remove or pool list")


@pool.command(name="add")
@click.argument("model", type=MODEL, metavar="MODEL")
@click.option(
    "--pairs", type=Span("K-L", 0, 65535), default=None, help="Pairs K to L of the sequence (the first pair is 0)."
)
@click.option(
    "--ports", type=PORT_RANGE, default=None, metavar="LOW-HIGH", help="The pairs whose backend is in LOW-HIGH."
)
@click.option(
    "--overflow",
    type=click.Choice(["shared", "fail"]),
    default="shared",
    show_default=True,
    help="When the pool is full: take a pair of the shared range, or fail.",
)
@json_option
@pass_settings
def add(
    settings: Settings,
    model: str,
    pairs: tuple[int, int] | None,
    ports: tuple[int, int] | None,
    overflow: str,
    as_json: bool,
) -> int:
    """Give MODEL a pool (--pairs K-L or --ports LOW-HIGH); refused if it overlaps a pool or another model's app.

    \b
    Examples:
      portalloc pool add model_big --pairs 100-199
      portalloc pool add model_big --ports 6001-6199 --overflow fail
    """
    from portalloc.core.models import Pool

    if (pairs is None) == (ports is None):
        raise click.UsageError("give the pool as --pairs K-L or as --ports LOW-HIGH (one of them)")
    service = settings.service()
    if ports is not None:
        found = service.ledger().policy.pairs_with_backends(*ports)
        if not found:
            raise click.BadParameter(
                f"no pair of the policy has its backend in {ports[0]}-{ports[1]}", param_hint="--ports"
            )
        pairs = found[0], found[-1]
    first, last = pairs  # type: ignore[misc]  # one of the two was given: checked above
    policy = service.add_pool(Pool(model=model, first=first, last=last, overflow=overflow))
    _echo_pools(policy, as_json)
    return 0


@pool.command(name="remove")
@click.argument("model", type=MODEL, metavar="MODEL")
@json_option
@pass_settings
def remove(settings: Settings, model: str, as_json: bool) -> int:
    """Remove MODEL's pool; its apps keep their pairs, and the pairs join the shared range as they free up.

    \b
    Example:
      portalloc pool remove model_big
    """
    service = settings.service()
    service.remove_pool(model)
    _echo_pools(service.ledger().policy, as_json)
    return 0


@pool.command(name="list")
@json_option
@pass_settings
def list_pools(settings: Settings, as_json: bool) -> int:
    """List the pools: model, pairs, ports and overflow rule.

    \b
    Example:
      portalloc pool list --json
    """
    _echo_pools(settings.service().ledger().policy, as_json)
    return 0


def _echo_pools(policy: PortPolicy, as_json: bool) -> None:
    spans = [(p, policy.pair(p.first), policy.pair(p.last)) for p in policy.pools]
    if as_json:
        echo_json(
            [
                {
                    "model": p.model,
                    "first": p.first,
                    "last": p.last,
                    "pairs": p.size,
                    "backends": [first[0], last[0]],
                    "frontends": [first[1], last[1]],
                    "overflow": p.overflow,
                }
                for p, first, last in spans
            ]
        )
        return
    if not spans:
        click.echo("No pools.")
        return
    table = [("MODEL", "PAIRS", "BACKENDS", "FRONTENDS", "OVERFLOW")]
    table += [
        (p.model, f"{p.first}-{p.last} ({p.size:,})", f"{first[0]}-{last[0]}", f"{first[1]}-{last[1]}", p.overflow)
        for p, first, last in spans
    ]
    echo_table(table, "<>>><")
