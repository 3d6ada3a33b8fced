"""``portalloc release MODEL APP_NUM``: free a pair for reuse."""

from __future__ import annotations

import click

from portalloc.commands.options import Settings, key_arguments, pass_settings
from portalloc.errors import PortallocError


@click.command()
@key_arguments
@pass_settings
def release(settings: Settings, model: str, app_num: int) -> int:
    """Release the pair of MODEL's app APP_NUM (exit 1 if it has none).

    \b
    Example:
      portalloc release model_a 1
    """
    if not settings.service().release_ports(model, app_num):
        raise PortallocError(f"{model}/{app_num} has no allocation in {settings.ledger_path}; nothing to release")
    click.echo(f"Released {model}/{app_num}.")
    return 0
