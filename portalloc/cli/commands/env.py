"""``portalloc env MODEL APP_NUM`` (or ``--app-dir DIR``): the pair as environment assignments, allocating it if new."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.cli.context import Settings
from portalloc.cli.params import APP_NUM, MODEL, format_option, pass_settings, prefix_option
from portalloc.integrations.envvars import (
    COMPOSE_PROJECT_VAR,
    FORMATS,
    compose_project_name,
    format_variables,
    port_variables,
)


@click.command()
@click.argument("model", type=MODEL, metavar="[MODEL", required=False)
@click.argument("app_num", type=APP_NUM, metavar="APP_NUM]", required=False)
@click.option(
    "--app-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The app's directory (…/<model dir>/app<N>, as cleanup names it) instead of MODEL APP_NUM.",
)
@format_option(
    *FORMATS,
    default="shell",
    help="shell: export lines for eval; dotenv: NAME=VALUE lines; json: an object of strings.",
    dest="form",
)
@prefix_option
@click.option("--port-var", is_flag=True, help="Also print PORT (the backend port), as portalloc run sets it.")
@click.option(
    "--compose-project",
    is_flag=True,
    help="Also print COMPOSE_PROJECT_NAME, one per worktree (<repository>-<worktree>), so that two "
    "worktrees' compose stacks do not share containers.",
)
@pass_settings
def env(
    settings: Settings,
    model: str | None,
    app_num: int | None,
    app_dir: Path | None,
    form: str,
    prefix: str,
    port_var: bool,
    compose_project: bool,
) -> int:
    """Print BACKEND_PORT and FRONTEND_PORT of MODEL's app APP_NUM, allocating the pair if it has none.

    With --app-dir the key is read from the directory's path: .../openai%2Fgpt-4o/app1
    is openai/gpt-4o's app 1 (the model directory is named as cleanup names it).

    \b
    Examples:
      eval "$(portalloc env model_a 1)"              # export both into this shell
      eval "$(portalloc env model_a 1 --port-var)"   # ... and PORT, as portalloc run sets it
      portalloc env model_a 1 --format dotenv > .env.ports
      eval "$(portalloc env --app-dir .)"             # in apps/openai%2Fgpt-4o/app1
      eval "$(portalloc env model_a 1 --compose-project)" && docker compose up -d
    """
    if app_dir is not None:
        if model is not None:
            raise click.UsageError("give MODEL APP_NUM or --app-dir, not both")
        from portalloc.core.keys import key_of_app_dir

        model, app_num = key_of_app_dir(app_dir.resolve())
    elif model is None or app_num is None:
        raise click.UsageError("give MODEL APP_NUM, or --app-dir DIR")
    backend, frontend, _worktree = settings.pair_for(model, app_num)
    variables = port_variables(backend, frontend, prefix, port_var=port_var)
    if compose_project:
        variables[COMPOSE_PROJECT_VAR] = _project_name(settings.ledger_path)
    click.echo(format_variables(variables, form), nl=False)
    return 0


def _project_name(ledger_path: Path) -> str:
    """``COMPOSE_PROJECT_NAME`` for the work tree holding the ledger: its repository's name, and in a linked
    worktree the worktree's name too; outside git, the ledger's directory's name."""
    from portalloc.machine.identity import identify

    identity = identify(ledger_path)
    if identity.top is None or identity.common_dir is None:
        return compose_project_name(identity.ledger.parent.name)
    if identity.worktree is None:
        return compose_project_name(identity.top.name)
    common = identity.common_dir
    # The main worktree's directory holds <repository>/.git; a bare repository is <repository>.git itself.
    repository = common.parent.name if common.name == ".git" else common.name.removesuffix(".git")
    return compose_project_name(repository, identity.worktree.name)
