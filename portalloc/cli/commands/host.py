"""``portalloc host``: this machine's ledgers and leases; ``host sync``, ``host recover``, ``host prune``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json, echo_table
from portalloc.cli.params import json_option, pass_settings

if TYPE_CHECKING:
    from portalloc.machine.leases import Instance, Lease, LeaseStore
    from portalloc.machine.leaseview import Clash
    from portalloc.machine.worktreeleases import WorktreeLease


def _open_store(create: bool = True) -> LeaseStore | None:
    """This user's store; ``None`` when there is none yet and ``create`` is false (nothing to show)."""
    from portalloc.machine.leases import STORE_NAME, open_store, state_dir

    if not create and not (state_dir() / STORE_NAME).exists():
        return None
    return open_store()


def lease_json(lease: Lease, where: str) -> dict[str, Any]:
    """One lease in ``host --json``: the pair's keys, then which ledger and whether it is live."""
    return {
        "model": lease.model,
        "app_num": lease.app_num,
        "backend": lease.backend,
        "frontend": lease.frontend,
        "ledger": where,
        "identity": lease.identity,
        "live": lease.live,
        "ended_why": lease.ended_why,
    }


#: How many leases and clashes the text listing shows unless --limit says otherwise (--json: all).
TEXT_LIMIT = 100


@click.group(invoke_without_command=True)
@click.option("--model", default=None, metavar="MODEL", help="Only this model's leases.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, metavar="N", help="Who holds port N.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help=f"List at most N leases and N clashes, by port (0: all; default {TEXT_LIMIT}, with --json all).",
)
@json_option
@click.pass_context
def host(ctx: click.Context, model: str | None, port: int | None, limit: int | None, as_json: bool) -> int:
    """List this machine's ledgers and live leases, and the ports two ledgers both claim.

    The host lease store ($PORTALLOC_STATE_DIR, else $XDG_STATE_HOME/portalloc, else
    ~/.local/state/portalloc) is this machine's memory of every pair it handed out, so
    that worktrees, clones, stashes and branch switches never get one port twice.

    \b
    Examples:
      portalloc host                 # ledgers, leases, clashes
      portalloc host --port 5003     # who holds 5003 here
      portalloc host --limit 0       # every lease and clash, not the first 100
      portalloc host prune --dry-run
    """
    if ctx.invoked_subcommand is not None:
        return 0
    from portalloc.machine.leaseview import clashes, ledger_labels

    limit = (0 if as_json else TEXT_LIMIT) if limit is None else limit
    store = _open_store(create=False)
    if store is None:
        listing = _Listing([], (0, []), (0, []), {}, [])
    else:
        ports = None if port is None else [port]
        own = [
            w
            for w in store.worktrees.leases()
            if (model is None or w.model == model) and (port is None or port in w.ports)
        ]
        listing = _Listing(
            store.instances(),
            store.live_by_port(model=model, ports=ports, limit=limit or None),
            clashes(store, port, limit or None),
            ledger_labels(store),
            own,
        )
    if as_json:
        echo_json(listing.json())
    else:
        listing.echo()
    return 0


@dataclass
class _Listing:
    """What ``portalloc host`` shows: every ledger, and the first leases and clashes by port with their totals."""

    instances: list[Instance]
    leases: tuple[int, list[Lease]]
    clashes: tuple[int, list[Clash]]
    labels: dict[str, str]
    #: Linked worktrees' own pairs (worktrees: separate), shown by ledger (its repository) and worktree.
    worktree_pairs: list[WorktreeLease]

    def __post_init__(self) -> None:
        # By what a person reads (identities are random ids): ledgers by name, leases by port.
        self.instances.sort(key=lambda instance: self.labels[instance.identity])
        self.leases[1].sort(key=lambda lease: (lease.backend, lease.frontend, self.where(lease), lease.key))

    def where(self, lease: Lease) -> str:
        return self.labels.get(lease.identity, lease.identity)

    def json(self) -> dict[str, Any]:
        """``host --json``: ledgers, leases and clashes, with how many of each there are in all."""
        return {
            "ledgers": [
                {
                    "identity": i.identity,
                    "path_in_repository": i.relative,
                    "copies": [{"path": str(p), "present": p.parent.is_dir()} for p in i.checkouts],
                }
                for i in self.instances
            ],
            "leases": [lease_json(lease, self.where(lease)) for lease in self.leases[1]],
            "leases_total": self.leases[0],
            "clashes": [
                {"port": clash.port, "holders": [lease_json(h, self.where(h)) for h in clash.holders]}
                for clash in self.clashes[1]
            ],
            "clashes_total": self.clashes[0],
            "worktree_pairs": [
                {
                    "model": w.model,
                    "app_num": w.app_num,
                    "backend": w.backend,
                    "frontend": w.frontend,
                    "ledger": self.labels.get(w.identity, w.identity),
                    "identity": w.identity,
                    "worktree": str(w.worktree),
                    "present": w.worktree.is_dir(),
                }
                for w in self.worktree_pairs
            ],
        }

    def echo(self) -> None:
        """The listing for a person, in one write (30,000 lines one at a time cost seconds)."""
        count = len(self.instances)
        lines = [f"{count} ledger{'' if count == 1 else 's'} on this machine"]
        for instance in self.instances:
            present, others = instance.present(), len(instance.present()) - 1
            more = f" (and {others} other work tree{'' if others == 1 else 's'})" if others > 0 else ""
            lines.append(f"  {self.labels[instance.identity]}{more}{'' if present else ' (its work tree is gone)'}")
        total, leases = self.leases
        lines.append(f"{total} live lease{'' if total == 1 else 's'}")
        click.echo("\n".join(lines))
        rows = [["model", "app", "backend", "frontend", "ledger"]]
        rows += [
            [lease.model, str(lease.app_num), str(lease.backend), str(lease.frontend), self.where(lease)]
            for lease in leases
        ]
        if len(rows) > 1:
            echo_table(rows, "<>>><")
        lines = [_left_out(total - len(leases), "lease")]
        for clash in self.clashes[1]:
            holders = ", ".join(f"{h.model}/{h.app_num} of {self.where(h)}" for h in clash.holders)
            lines.append(f"clash: port {clash.port} is claimed by {holders}")
        lines.append(_left_out(self.clashes[0] - len(self.clashes[1]), "clash"))
        if any(lines):
            click.echo("\n".join(line for line in lines if line))
        by_ledger: dict[str, list[WorktreeLease]] = {}
        for w in self.worktree_pairs:
            by_ledger.setdefault(self.labels.get(w.identity, w.identity), []).append(w)
        for where, pairs in sorted(by_ledger.items()):
            click.echo(f"{len(pairs)} worktree pair{'' if len(pairs) == 1 else 's'} of {where}")
            table = [["model", "app", "backend", "frontend", "worktree"]]
            for w in pairs:
                tree = str(w.worktree) + ("" if w.worktree.is_dir() else " (gone)")
                table.append([w.model, str(w.app_num), str(w.backend), str(w.frontend), tree])
            echo_table(table, "<>>><")


def _left_out(count: int, what: str) -> str:
    """``… and 29,900 more leases (--limit 0 lists them all)``, or nothing when none was left out."""
    if count <= 0:
        return ""
    plural = f"{what}{'es' if what.endswith('sh') else 's'}" if count > 1 else what
    return f"… and {count:,} more {plural} (--limit 0 lists them all)"


@host.command()
@click.argument("paths", nargs=-1, metavar="[LEDGER]...", type=click.Path(path_type=Path))
@pass_settings
def sync(settings: Settings, paths: tuple[Path, ...]) -> int:
    """Lease the rows of the ledger (or of each LEDGER): what git brought here is protected from then on.

    Run by the post-checkout and post-merge hooks that 'portalloc git-setup' installs, and
    once per existing checkout after an upgrade: a checkout this machine has not seen yet
    cannot be protected. Keys a commit released (here or upstream) lose their lease.
    """
    from portalloc.service.host_admin import sync as sync_ledger

    store = _open_store()
    assert store is not None
    for path in paths or (settings.ledger_path,):
        changed, ended = sync_ledger(store, path)
        note = "".join(f"; {m}/{n} was released by a commit, its lease ended" for m, n in ended)
        click.echo(f"Synced {path}: {changed} lease{'' if changed == 1 else 's'} added or moved{note}")
        # A linked worktree's own pairs (worktrees: separate) that a pulled row now holds move, and say so.
        settings._replace(ledger_path=path).service().recheck_worktree_pairs()
    return 0


@host.command()
@pass_settings
def recover(settings: Settings) -> int:
    """Put back every key git dropped from this ledger (stash, checkout, reset) on its leased pair.

    A key that a commit released (here or upstream) is not put back: its lease ends.
    """
    restored, released = settings.service().recover()
    for allocation in restored:
        click.echo(f"Recovered {allocation.label()} ({allocation.backend}/{allocation.frontend}).")
    for (model, app_num), ((backend, frontend), commit) in released.items():
        click.echo(f"Not recovered {model}/{app_num} ({backend}/{frontend}): released by commit {commit}.")
    if not (restored or released):
        click.echo(f"Nothing to recover in {settings.ledger_path}.")
    return 0


@host.command()
@click.option("--dry-run", is_flag=True, help="Say what would be ended; end nothing.")
def prune(dry_run: bool) -> int:
    """End the leases nothing holds any more, and print each.

    Those of ledgers whose work tree is gone (a removed clone, 'git worktree remove'),
    and of keys that nothing of their repository still holds: no branch,
    remote-tracking branch, tag, stash entry, worktree file or index. And the own pairs
    of linked worktrees (worktrees: separate) that 'git worktree list' no longer has,
    or marks prunable and not locked.
    """
    from portalloc.machine.leaseview import ledger_labels
    from portalloc.service.host_admin import prune as prune_leases
    from portalloc.service.host_admin import prune_worktrees

    store = _open_store(create=False)
    labels = ledger_labels(store) if store else {}  # before pruning, which forgets gone copies
    # Worktrees first: they ask git through a copy of their ledger, which pruning leases may forget.
    worktrees = prune_worktrees(store, dry_run=dry_run) if store else []
    pruned = prune_leases(store, dry_run=dry_run) if store else []
    pruned.sort(key=lambda item: (labels.get(item.lease.identity, ""), item.lease.key))
    verb = "Would end" if dry_run else "Ended"
    for item in pruned:
        lease = item.lease
        click.echo(
            f"{verb} the lease of {lease.model}/{lease.app_num} ({lease.backend}/{lease.frontend}) "
            f"of {labels.get(lease.identity, lease.identity)}: {item.why}."
        )
    for gone in worktrees:
        pairs = ", ".join(f"{w.model}/{w.app_num} ({w.backend}/{w.frontend})" for w in gone.leases)
        click.echo(f"{verb} the own pairs of worktree {gone.worktree}: {pairs}: {gone.why}.")
    if not (pruned or worktrees):
        click.echo("Nothing to prune.")
    return 0
