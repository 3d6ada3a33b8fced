"""``portalloc reserve PORT|LOW-HIGH…`` and ``portalloc unreserve …``: ports never handed out."""

from __future__ import annotations

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import PORT_RANGE, json_option, pass_settings


@click.command()
@click.argument("ranges", nargs=-1, required=True, type=PORT_RANGE, metavar="PORT|LOW-HIGH...")
@json_option
@pass_settings
def reserve(settings: Settings, ranges: tuple[tuple[int, int], ...], as_json: bool) -> int:
    """Never hand out these ports (a team's Redis on 6379, say). Apps already on one keep it and are named.

    \b
    Examples:
      portalloc reserve 6379 9229 5173
      portalloc reserve 7000-7010
    """
    service = settings.service()
    holders = service.reserve(ranges)
    for allocation, port in holders:
        click.echo(f"Warning: {allocation.label()} already holds reserved port {port}; it keeps it", err=True)
    _echo_reserved(service.ledger().policy.reserved, as_json)
    return 0


@click.command()
@click.argument("ranges", nargs=-1, required=True, type=PORT_RANGE, metavar="PORT|LOW-HIGH...")
@json_option
@pass_settings
def unreserve(settings: Settings, ranges: tuple[tuple[int, int], ...], as_json: bool) -> int:
    """Hand these ports out again (ports that were not reserved are ignored).

    \b
    Example:
      portalloc unreserve 6379
    """
    _echo_reserved(settings.service().unreserve(ranges).reserved, as_json)
    return 0


def _echo_reserved(reserved: list[list[int]], as_json: bool) -> None:
    from portalloc.core.models import describe_ranges

    if as_json:
        echo_json({"reserved": reserved})
    else:
        click.echo(f"Reserved: {describe_ranges(reserved)}")
