"""``portalloc repair``: move allocations off ports that another allocation holds."""

from __future__ import annotations

from typing import Any

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.params import json_option, pass_settings


@click.command()
@click.option("--dry-run", is_flag=True, help="Show the moves; change nothing.")
@click.option(
    "--host",
    "on_host",
    is_flag=True,
    help="Instead, move this ledger's side of each port another ledger has leased on this machine (see 'host').",
)
@json_option
@pass_settings
def repair(settings: Settings, dry_run: bool, on_host: bool, as_json: bool) -> int:
    """Rewrite a ledger that has conflicts (after a plain textual merge, say) so that it has none.

    The earliest row in the file that holds a port keeps it; every later row sharing
    a port moves to the lowest free pair. A key listed twice keeps its first row. No
    key is ever dropped. A ledger without conflicts is left untouched (and unlocked).

    \b
    Examples:
      portalloc repair --dry-run   # show the moves
      portalloc repair
    """
    if on_host:
        return _repair_host(settings, dry_run, as_json)
    from portalloc.storage.rewrite import repair_file

    path = settings.ledger_path
    moves = repair_file(path, dry_run=dry_run, lock_timeout=settings.lock_timeout)
    if as_json:
        moved: list[dict[str, Any]] = [
            {
                "model": move.before.model,
                "app_num": move.before.app_num,
                "from": {"backend": move.before.backend, "frontend": move.before.frontend},
                "to": {"backend": move.after.backend, "frontend": move.after.frontend},
                "reason": move.reason,
            }
            for move in moves
        ]
        echo_json({"ledger": str(path), "dry_run": dry_run, "moved": moved})
        return 0
    verb = "would move" if dry_run else "moved"
    for move in moves:
        click.echo(f"{verb} {move.describe()}")
    if not moves:
        click.echo(f"Nothing to repair: no conflicts in {path}.")
    else:
        done = "Would repair" if dry_run else "Repaired"
        click.echo(f"{done} {path}: {len(moves)} move{'s' if len(moves) > 1 else ''}.")
    return 0


def _repair_host(settings: Settings, dry_run: bool, as_json: bool) -> int:
    """``repair --host``: what moved (or would), in the same shapes as ``repair``."""
    moves = settings.service().move_off_shared_ports(dry_run=dry_run)
    if as_json:
        moved = [
            {
                "model": before.model,
                "app_num": before.app_num,
                "from": {"backend": before.backend, "frontend": before.frontend},
                "to": {"backend": after.backend, "frontend": after.frontend},
                "reason": "another ledger has leased its port on this machine",
            }
            for before, after in moves
        ]
        echo_json({"ledger": str(settings.ledger_path), "dry_run": dry_run, "moved": moved})
        return 0
    verb = "would move" if dry_run else "moved"
    for before, after in moves:
        click.echo(
            f"{verb} {before.label()} from {before.backend}/{before.frontend} to {after.backend}/{after.frontend} "
            "(another ledger has leased its port on this machine)"
        )
    if not moves:
        click.echo(f"Nothing to repair: no port of {settings.ledger_path} is leased to another key here.")
    return 0
