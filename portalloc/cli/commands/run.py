"""``portalloc run MODEL APP_NUM -- COMMAND [ARGS…]``: run a program with its ports in the environment."""

from __future__ import annotations

import os

import click

from portalloc.cli.context import Settings
from portalloc.cli.params import key_arguments, pass_settings, prefix_option


@click.command(context_settings={"ignore_unknown_options": True})
@key_arguments
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- COMMAND [ARGS]...")
@prefix_option
@click.option("--no-port-var", is_flag=True, help="Do not set PORT (by default PORT is the backend port).")
@pass_settings
def run(settings: Settings, model: str, app_num: int, command: tuple[str, ...], prefix: str, no_port_var: bool) -> int:
    """Run COMMAND with BACKEND_PORT, FRONTEND_PORT and PORT of MODEL's app APP_NUM in its environment.

    The pair is allocated if new. COMMAND runs without a shell, in place of portalloc
    (exec): it keeps stdin, stdout, stderr and the terminal, receives signals directly,
    and its exit status is portalloc's. Put -- before COMMAND so that its own options
    stay its own.

    \b
    Examples:
      portalloc run model_a 1 -- npm run dev
      portalloc run model_a 1 -- sh -c 'exec python -m http.server "$BACKEND_PORT"'
    """
    from portalloc.integrations.envvars import port_variables
    from portalloc.machine.launch import exec_program, find_program

    program = find_program(command[0], os.environ.get("PATH"))  # before allocating: a typo writes nothing
    backend, frontend, _worktree = settings.pair_for(model, app_num)
    environment = {**os.environ, **port_variables(backend, frontend, prefix, port_var=not no_port_var)}
    exec_program(program, command, environment)
