"""``portalloc cleanup``: release allocations whose app directory is gone."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.pairtext import pair_json
from portalloc.cli.params import MODEL, json_option, pass_settings


@click.command()
@click.option(
    "--apps-dir",
    required=True,
    envvar="PORTALLOC_APPS_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding <model dir>/app<N> folders [env: PORTALLOC_APPS_DIR].",
)
@click.option("--model", type=MODEL, default=None, help="Only this model's apps.")
@click.option("--dry-run", is_flag=True, help="Show what would be released (or refused); change nothing.")
@click.option(
    "--all-gone",
    is_flag=True,
    help="Release every app if none has a directory (else that is an error: a mistyped APPS_DIR).",
)
@json_option
@pass_settings
def cleanup(settings: Settings, apps_dir: Path, model: str | None, dry_run: bool, all_gone: bool, as_json: bool) -> int:
    """Release allocations whose app directory APPS_DIR/<model dir>/app<N> no longer exists.

    <model dir> is the model name with every ASCII character other than letters,
    digits, '_', '-' and '.' written as %XX: openai/gpt-4o lives in openai%2Fgpt-4o.

    \b
    Examples:
      portalloc cleanup --apps-dir ./apps --dry-run   # show what would go
      portalloc cleanup --apps-dir ./apps
    """
    orphans = settings.service().cleanup_orphaned_allocations(apps_dir, model, dry_run=dry_run, allow_all=all_gone)
    if as_json:
        released = [pair_json(a.model, a.app_num, a.backend, a.frontend) for a in orphans]
        echo_json({"ledger": str(settings.ledger_path), "dry_run": dry_run, "released": released})
        return 0
    verb = "would release" if dry_run else "released"
    for a in orphans:
        click.echo(f"{verb} {a.label()} ({a.backend}/{a.frontend})")
    click.echo(f"{verb.capitalize()} {len(orphans)} allocation{'' if len(orphans) == 1 else 's'}.")
    return 0
