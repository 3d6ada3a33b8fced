"""``portalloc git-setup``: install the ledger's merge driver in the current repository."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import json_option, pass_settings


@click.command(name="git-setup")
@json_option
@pass_settings
def git_setup(settings: Settings, as_json: bool) -> int:
    """Use portalloc's merge driver for the ledger in this repository (safe to run again).

    Adds '<ledger> merge=portalloc eol=lf' to .gitattributes and '<ledger>.lock' to
    .gitignore at the repository root, and sets merge.portalloc.name and
    merge.portalloc.driver ('portalloc merge-driver %O %A %B') in .git/config.
    Prints one line per step.

    \b
    Example:
      portalloc git-setup
    """
    from portalloc.integrations.gitsetup import set_up_git

    done = set_up_git(settings.ledger_path, Path.cwd())
    if as_json:
        echo_json(
            {
                "repository": str(done.root),
                "ledger": done.ledger.as_posix(),
                "steps": [step._asdict() for step in done.steps],
            }
        )
    else:
        for step in done.steps:
            click.echo(step.line())
    for note in done.notes:
        click.echo(f"note: {note}", err=True)
    return 0
