"""``portalloc compose-check [FILE]...``: published host ports of a compose project against the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import APP_NUM, MODEL, json_option, pass_settings

if TYPE_CHECKING:
    from portalloc.integrations.compose import Binding, Finding, Project

#: Findings printed (or put in the JSON) before the rest are summarised in one line.
MAX_SHOWN = 50


@click.command(name="compose-check")
@click.argument("files", metavar="[FILE]...", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=MODEL, default=None, help="The model whose app this project runs (with --app).")
@click.option("--app", "app_num", type=APP_NUM, default=None, help="The app number (with --model).")
@click.option(
    "--project-directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="As docker compose's: where compose files are looked for and .env is read.",
)
@click.option(
    "--env-file",
    "env_files",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="Variables for ${...} [default: .env, as docker compose reads it]; repeatable, a later file wins; "
    "the environment wins over all.",
)
@json_option
@pass_settings
def compose_check(
    settings: Settings,
    files: tuple[Path, ...],
    model: str | None,
    app_num: int | None,
    project_directory: Path | None,
    env_files: tuple[Path, ...],
    as_json: bool,
) -> int:
    """Report host ports the compose project publishes that another app holds, or that are not MODEL/APP's pair.

    The project is what `docker compose config` would read: the FILEs merged in order
    (like its -f), else COMPOSE_FILE (environment or .env), else compose's own
    discovery (compose.yaml, docker-compose.yml, … in this directory or the nearest
    parent, with its override file). Anything docker compose itself would reject is a
    finding too. Without --model/--app the app is taken from the first file's path
    (.../<model>/app<N>/...) when it names exactly one allocation. Exit 1 on any finding.

    \b
    Examples:
      portalloc compose-check                  # in apps/model_a/app1: compose.yaml + compose.override.yaml
      portalloc compose-check compose.yml compose.dev.yml --model model_a --app 1
    """
    from portalloc.errors import PortallocError
    from portalloc.integrations import compose, composecheck

    if (model is None) != (app_num is None):
        raise click.UsageError("--model and --app go together")
    if not settings.ledger_path.exists():
        # Like check: a mistyped ledger path must not pass a CI gate as "checked against the ledger".
        raise PortallocError(f"there is no ledger at {settings.ledger_path}")
    project = compose.load_project(files, project_directory=project_directory, env_files=env_files)
    # The pairs this work tree uses: in a linked worktree under worktrees: separate, its own where it has them.
    entries = [(a.model, a.app_num, a.backend, a.frontend) for a in settings.service().pairs_in_use()]
    first = project.files[0]
    app = (model, app_num) if model is not None and app_num is not None else composecheck.app_from_path(first, entries)
    findings = project.invalid + composecheck.check_ports(project.bindings, entries, app)
    for note in project.notes:
        click.echo(f"Warning: {note}", err=True)
    if as_json:
        echo_json(_as_json(project, findings, app))
        return 1 if findings else 0
    return _echo_text(project, findings, app)


def _as_json(project: Project, findings: list[Finding], app: tuple[str, int] | None) -> dict[str, Any]:
    """The ``--json`` object: the files, the app, what they publish, and the first ``MAX_SHOWN`` findings."""
    return {
        "file": str(project.files[0]),
        "files": [str(path) for path in project.files],
        "app": {"model": app[0], "app_num": app[1]} if app else None,
        "published": [_binding_json(b) for b in project.bindings],
        "findings": [_finding_json(f) for f in findings[:MAX_SHOWN]],
        "findings_not_shown": max(0, len(findings) - MAX_SHOWN),
    }


def _echo_text(project: Project, findings: list[Finding], app: tuple[str, int] | None) -> int:
    """The findings for a person, then one summary line; the exit status (1 on any finding)."""
    for finding in findings[:MAX_SHOWN]:
        click.echo(finding.message)
    hidden = max(0, len(findings) - MAX_SHOWN)
    if hidden:
        click.echo(f"… and {hidden} more finding{'' if hidden == 1 else 's'} (fix these first)")
    # Files compose found itself are named as found; files the user named, as the user named them.
    named = " + ".join(str(path) for path in project.files)
    count = len(project.bindings)
    checked = f"{count} published port{'' if count == 1 else 's'}"
    label = f"{app[0]}/{app[1]}" if app else None
    against = f" against {label}'s pair and the ledger" if label else " against the ledger"
    if findings:
        click.echo(f"{len(findings)} problem{'' if len(findings) == 1 else 's'} in {named} ({checked}{against})")
        return 1
    click.echo(f"OK: {checked} in {named}, checked{against}")
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
