"""``portalloc merge-driver BASE OURS THEIRS``: git's merge driver for the ledger (``%O %A %B``)."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.cli.context import Settings
from portalloc.cli.params import pass_settings

_LEDGER_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command(name="merge-driver")
@click.argument("base", type=_LEDGER_FILE)
@click.argument("ours", type=_LEDGER_FILE)
@click.argument("theirs", type=_LEDGER_FILE)
@pass_settings
def merge_driver(settings: Settings, base: Path, ours: Path, theirs: Path) -> int:
    """Merge three versions of a ledger into OURS (git calls it as `portalloc merge-driver %O %A %B`).

    The result is the union of both sides; a key released on one side and untouched
    on the other stays released; a key only one side changed takes that side's pair;
    a key both sides changed keeps our pair; when the sides gave different keys one
    port, ours keeps it and theirs moves to the next free pair. Under git, when only
    one side is already published (reachable from a remote-tracking branch or the
    upstream), that side keeps its pairs and the other moves: in `git pull` (a merge)
    "ours" is the local, unpushed branch, and a pushed pair may already be serving. Each move is printed
    on stderr, naming the side (and, under git, the branch) it came from. A policy
    change (ranges, reserved ports, pools) made on one side is taken. Exits 1, leaving
    OURS as it was, when a side is not a valid ledger, both sides changed the policy
    differently, or an allocation does not fit the merged policy. An empty BASE (git's
    add/add case) counts as a ledger with nothing in it.

    Run by hand on a ledger file, OURS is written under the ledger's lock, so an
    allocation another process makes meanwhile is kept.

    \b
    Example:
      portalloc git-setup     # installs it: git then calls merge-driver itself
    """
    from portalloc.core.merge import Sides
    from portalloc.integrations.gitsetup import MergeSides, is_git_temp_file, merge_sides
    from portalloc.storage.rewrite import merge_files

    by_git = is_git_temp_file(ours)
    # Under git the file names are its temp files, meaningless to a user: name the branches instead.
    found = merge_sides(Path.cwd()) if by_git else MergeSides("ours", "theirs")
    sides = Sides(found.ours, found.theirs) if by_git else None
    moves = merge_files(
        base,
        ours,
        theirs,
        sides,
        live=not by_git,
        keep_theirs=found.published == "theirs",
        lock_timeout=settings.lock_timeout,
    )
    if moves and found.published:
        kept, moved = (found.ours, found.theirs) if found.published == "ours" else (found.theirs, found.ours)
        click.echo(
            f"portalloc merge-driver: {kept} is already published (a remote-tracking branch has it) and "
            f"{moved} is not, so {moved.split(' ', 1)[0]} moves where the two clash",
            err=True,
        )
    for move in moves:
        click.echo(f"portalloc merge-driver: moved {move.describe()}", err=True)
    return 0
