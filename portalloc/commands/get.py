"""``portalloc get MODEL APP_NUM``: print the pair, allocating it if new."""

from __future__ import annotations

import click

from portalloc.commands.options import (
    Settings,
    echo_json,
    json_option,
    key_arguments,
    pair_for,
    pair_json,
    pass_settings,
)


@click.command()
@key_arguments
@json_option
@pass_settings
def get(settings: Settings, model: str, app_num: int, as_json: bool) -> int:
    """Print the port pair of MODEL's app APP_NUM, allocating the lowest free pair if it has none."""
    backend, frontend = pair_for(settings, model, app_num)
    if as_json:
        echo_json(pair_json(model, app_num, backend, frontend))
    else:
        click.echo(f"{model}/{app_num}: backend {backend}, frontend {frontend}")
    return 0
