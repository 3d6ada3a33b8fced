"""``portalloc compose-check FILE``: published host ports of a docker-compose file against the ledger."""

from __future__ import annotations

import os
from pathlib import Path

import click

from portalloc.commands.options import APP_NUM, MODEL, Settings, echo_json, json_option, pass_settings


@click.command(name="compose-check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=MODEL, default=None, help="The model whose app this file runs (with --app).")
@click.option("--app", "app_num", type=APP_NUM, default=None, help="The app number (with --model).")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Variables for ${...} in FILE [default: .env beside FILE]; the environment wins, as in docker compose.",
)
@json_option
@pass_settings
def compose_check(
    settings: Settings, file: Path, model: str | None, app_num: int | None, env_file: Path | None, as_json: bool
) -> int:
    """Report host ports FILE publishes that another app holds in the ledger, or that are not MODEL/APP's pair.

    Without --model/--app the app is taken from FILE's path (.../<model>/app<N>/...)
    when it names exactly one allocation. Exit 1 on any finding.

    \b
    Examples:
      portalloc compose-check apps/model_a/app1/docker-compose.yml
      portalloc compose-check compose.yml --model model_a --app 1
    """
    from portalloc import compose

    if (model is None) != (app_num is None):
        raise click.UsageError("--model and --app go together")
    document = compose.load_compose(file)
    variables = _dotenv_variables(env_file or file.parent / ".env", required=env_file is not None)
    variables.update(os.environ)
    published, notes = compose.published_ports(document, variables)
    entries = [(a.model, a.app_num, a.backend, a.frontend) for a in settings.service().get_all_allocations()]
    app = (model, app_num) if model is not None and app_num is not None else compose.app_from_path(file, entries)
    findings = compose.check_ports(published, entries, app)
    for note in notes:
        click.echo(f"Warning: {note}", err=True)
    label = f"{app[0]}/{app[1]}" if app else None
    if as_json:
        echo_json(
            {
                "file": str(file),
                "app": {"model": app[0], "app_num": app[1]} if app else None,
                "published": [{"service": p.service, "host_ip": p.host_ip, "port": p.port} for p in published],
                "findings": [{"port": f.port or None, "message": f.message} for f in findings],
            }
        )
        return 1 if findings else 0
    for finding in findings:
        click.echo(finding.message)
    checked = f"{len(published)} published port{'' if len(published) == 1 else 's'}"
    against = f" against {label}'s pair and the ledger" if label else " against the ledger"
    if findings:
        click.echo(f"{len(findings)} problem{'' if len(findings) == 1 else 's'} in {file} ({checked}{against})")
        return 1
    click.echo(f"OK: {checked} in {file}, checked{against}")
    return 0


def _dotenv_variables(path: Path, *, required: bool) -> dict[str, str]:
    from portalloc.envfile import assignments
    from portalloc.errors import ComposeFileError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ComposeFileError(f"env file {path} does not exist") from None
        return {}
    except OSError as error:
        raise ComposeFileError(f"cannot read {path}: {error.strerror or error}") from None
    return {name: value for name, (_, value) in assignments(data).items()}
