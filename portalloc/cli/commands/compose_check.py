"""``portalloc compose-check FILE``: published host ports of a docker-compose file against the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.context import Settings, pass_settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import APP_NUM, MODEL, json_option

if TYPE_CHECKING:
    from portalloc.integrations.compose import Binding, Finding

#: Findings printed (or put in the JSON) before the rest are summarised in one line.
MAX_SHOWN = 50


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

    Anything docker compose itself would reject in FILE is a finding too. Without
    --model/--app the app is taken from FILE's path (.../<model>/app<N>/...) when it
    names exactly one allocation. Exit 1 on any finding.

    \b
    Examples:
      portalloc compose-check apps/model_a/app1/docker-compose.yml
      portalloc compose-check compose.yml --model model_a --app 1
    """
    from portalloc.errors import PortallocError
    from portalloc.integrations import compose

    if (model is None) != (app_num is None):
        raise click.UsageError("--model and --app go together")
    if not settings.ledger_path.exists():
        # Like check: a mistyped ledger path must not pass a CI gate as "checked against the ledger".
        raise PortallocError(f"there is no ledger at {settings.ledger_path}")
    project = compose.load_project(file, env_file=env_file)
    entries = [(a.model, a.app_num, a.backend, a.frontend) for a in settings.service().get_all_allocations()]
    app = (model, app_num) if model is not None and app_num is not None else compose.app_from_path(file, entries)
    findings = project.invalid + compose.check_ports(project.bindings, entries, app)
    for note in project.notes:
        click.echo(f"Warning: {note}", err=True)
    hidden = max(0, len(findings) - MAX_SHOWN)
    if as_json:
        echo_json(
            {
                "file": str(file),
                "app": {"model": app[0], "app_num": app[1]} if app else None,
                "published": [_binding_json(b) for b in project.bindings],
                "findings": [_finding_json(f) for f in findings[:MAX_SHOWN]],
                "findings_not_shown": hidden,
            }
        )
        return 1 if findings else 0
    for finding in findings[:MAX_SHOWN]:
        click.echo(finding.message)
    if hidden:
        click.echo(f"… and {hidden} more finding{'' if hidden == 1 else 's'} (fix these first)")
    count = len(project.bindings)
    checked = f"{count} published port{'' if count == 1 else 's'}"
    label = f"{app[0]}/{app[1]}" if app else None
    against = f" against {label}'s pair and the ledger" if label else " against the ledger"
    if findings:
        click.echo(f"{len(findings)} problem{'' if len(findings) == 1 else 's'} in {file} ({checked}{against})")
        return 1
    click.echo(f"OK: {checked} in {file}, checked{against}")
    return 0


def _binding_json(binding: Binding) -> dict[str, Any]:
    return {
        "service": binding.service,
        "host_ip": binding.host_ip,
        "protocol": binding.protocol,
        "port": binding.low,
        "last_port": binding.high,
        "any_one": binding.any_one,
    }


def _finding_json(finding: Finding) -> dict[str, Any]:
    from portalloc.reports import ClaimReport  # the service is loaded by now: pydantic is no extra cost

    return {
        "kind": finding.kind,
        "port": finding.port,
        "holders": [ClaimReport.of(claim).model_dump() for claim in finding.holders],
        "message": finding.message,
    }
