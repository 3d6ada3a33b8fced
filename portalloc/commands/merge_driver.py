"""``portalloc merge-driver BASE OURS THEIRS``: git's merge driver for the ledger (``%O %A %B``)."""

from __future__ import annotations

from pathlib import Path

import click

_LEDGER_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command(name="merge-driver")
@click.argument("base", type=_LEDGER_FILE)
@click.argument("ours", type=_LEDGER_FILE)
@click.argument("theirs", type=_LEDGER_FILE)
def merge_driver(base: Path, ours: Path, theirs: Path) -> int:
    """Merge three versions of a ledger into OURS (git calls it as `portalloc merge-driver %O %A %B`).

    The result is the union of both sides; a key released on one side and untouched
    on the other stays released; a key both sides hold keeps our pair; when the sides
    gave different keys one port, ours keeps it and theirs moves to the next free
    pair. Each move is printed on stderr. A policy change (ranges, reserved ports,
    pools) made on one side is taken. Exits 1, leaving OURS as it was, when a side is
    not a valid ledger, both sides changed the policy differently, or an allocation
    does not fit the merged policy. An empty BASE (git's add/add case) counts as a
    ledger with nothing in it.
    """
    from portalloc.rewrite import merge_files

    for move in merge_files(base, ours, theirs):
        click.echo(f"portalloc merge-driver: moved {move.describe()}", err=True)
    return 0
