"""``portalloc git-setup``: install the ledger's merge driver in the current repository."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.commands.options import Settings, pass_settings


@click.command(name="git-setup")
@pass_settings
def git_setup(settings: Settings) -> int:
    """Use portalloc's merge driver for the ledger in this repository (safe to run again).

    Adds '<ledger> merge=portalloc' to .gitattributes and '<ledger>.lock' to
    .gitignore at the repository root, and sets merge.portalloc.name and
    merge.portalloc.driver ('portalloc merge-driver %O %A %B') in .git/config.
    Prints one line per step.

    \b
    Example:
      portalloc git-setup
    """
    from portalloc.gitsetup import set_up_git

    for line in set_up_git(settings.ledger_path, Path.cwd()):
        click.echo(line)
    return 0
