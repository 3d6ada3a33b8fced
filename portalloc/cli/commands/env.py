"""``portalloc env MODEL APP_NUM``: the pair as environment assignments, allocating it if new."""

from __future__ import annotations

import click

from portalloc.cli.context import Settings, pass_settings
from portalloc.cli.params import format_option, key_arguments, prefix_option
from portalloc.integrations.envvars import FORMATS, format_variables, port_variables


@click.command()
@key_arguments
@format_option(
    *FORMATS,
    default="shell",
    help="shell: export lines for eval; dotenv: NAME=VALUE lines; json: an object of strings.",
    dest="form",
)
@prefix_option
@click.option("--port-var", is_flag=True, help="Also print PORT (the backend port), as portalloc run sets it.")
@pass_settings
def env(settings: Settings, model: str, app_num: int, form: str, prefix: str, port_var: bool) -> int:
    """Print BACKEND_PORT and FRONTEND_PORT of MODEL's app APP_NUM, allocating the pair if it has none.

    \b
    Examples:
      eval "$(portalloc env model_a 1)"              # export both into this shell
      eval "$(portalloc env model_a 1 --port-var)"   # ... and PORT, as portalloc run sets it
      portalloc env model_a 1 --format dotenv > .env.ports
    """
    backend, frontend = settings.pair_for(model, app_num)
    click.echo(format_variables(port_variables(backend, frontend, prefix, port_var=port_var), form), nl=False)
    return 0
