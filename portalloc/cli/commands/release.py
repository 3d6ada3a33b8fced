"""``portalloc release MODEL APP_NUM`` / ``release --model M``: free pairs for reuse."""

from __future__ import annotations

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json, echo_released
from portalloc.cli.pairtext import pair_json
from portalloc.cli.params import APP_NUM, MODEL, json_option, pass_settings
from portalloc.errors import PortallocError


@click.command()
@click.argument("model", type=MODEL, metavar="[MODEL", required=False)
@click.argument("app_num", type=APP_NUM, metavar="APP_NUM]", required=False)
@click.option("--model", "whole_model", type=MODEL, default=None, help="Release every app of this model.")
@json_option
@pass_settings
def release(settings: Settings, model: str | None, app_num: int | None, whole_model: str | None, as_json: bool) -> int:
    """Release the pair of MODEL's app APP_NUM, or of every app of --model (exit 1 if there is none).

    --json prints the released allocation (an object), or with --model the list of them.

    \b
    Examples:
      portalloc release model_a 1
      portalloc release --model model_a   # every app of model_a
    """
    if whole_model is not None:
        if model is not None:
            raise click.UsageError("give MODEL APP_NUM or --model, not both")
        released = settings.service().release_model(whole_model)
        if not released:
            raise PortallocError(f"{whole_model} has no allocation in {settings.ledger_path}; nothing to release")
        echo_released(released, as_json)
        return 0
    if model is None or app_num is None:
        raise click.UsageError("give MODEL APP_NUM, or --model MODEL for all of its apps")
    released = settings.service().release_many([(model, app_num)])
    if not released:
        raise PortallocError(f"{model}/{app_num} has no allocation in {settings.ledger_path}; nothing to release")
    if as_json:
        echo_json(pair_json(model, app_num, released[0].backend, released[0].frontend))
    else:
        click.echo(f"Released {model}/{app_num}.")
    return 0
