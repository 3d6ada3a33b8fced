"""``portalloc stats``: how full the ledger is, overall, per range (pools, shared) and per model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_report, echo_table
from portalloc.cli.params import format_option, pass_settings

if TYPE_CHECKING:
    from portalloc.core.models import Ledger
    from portalloc.reports import StatsReport


@click.command()
@format_option(
    "text",
    "json",
    "prometheus",
    default="text",
    help="prometheus: the text exposition format, for node_exporter's textfile collector or a scraper.",
)
@pass_settings
def stats(settings: Settings, output: str) -> int:
    """Show allocations, capacity and free pairs: overall, per range (each pool, the shared range) and per model.

    Pairs with a port in this machine's ephemeral range, among the ports the OS
    reserves, or leased here to another checkout's key (host leases) are never handed
    out here: the free pairs say so, and the per-range and per-model rows count only
    the pairs usable on this machine.

    \b
    Examples:
      portalloc stats --json
      portalloc stats --format prometheus > /var/lib/node_exporter/portalloc.prom
    """
    from portalloc.reports import stats_report

    service = settings.service()
    ledger = service.ledger()
    unusable = service.unusable_here(ledger.policy)
    if output == "prometheus":
        from portalloc.core.metrics import prometheus_text

        click.echo(prometheus_text(ledger, unusable), nl=False)
        return 0
    report = stats_report(settings.ledger_path, ledger, unusable, service.worktree(), len(service.worktree_pairs()))
    if output == "json":
        echo_report(report)
        return 0
    _echo_text(report, ledger, unusable)
    return 0


def _free_pairs(report: StatsReport) -> str:
    """``1,492 of 1,494``; with the pairs this machine cannot hand out named apart when there are any."""
    if report.usable_here == report.capacity:
        return f"{report.free_pairs:,} of {report.capacity:,}"
    return (
        f"{report.free_here:,} of {report.usable_here:,} usable on this machine "
        f"({report.free_pairs:,} of {report.capacity:,} in the policy; "
        f"{report.capacity - report.usable_here:,} touch the OS ephemeral range, ports the OS reserves "
        "or ports other checkouts lease here)"
    )


def _echo_text(report: StatsReport, ledger: Ledger, unusable: frozenset[int]) -> None:
    """The report for a person: the figures as lines, then a table per range and per model."""
    from portalloc.core import metrics

    policy = report.policy
    last_backend, last_frontend = policy.pair(policy.pair_count - 1)
    lines = [
        ("Ledger", report.ledger),
        *(
            [("Worktree", f"{report.worktree} ({report.worktree_pairs:,} pairs of its own, worktrees: separate)")]
            if report.worktree is not None
            else []
        ),
        ("Allocations", f"{report.allocations:,} ({report.models:,} model{'' if report.models == 1 else 's'})"),
        ("Free pairs", _free_pairs(report)),
        (
            "Policy",
            f"backend {policy.backend_start}-{last_backend}, frontend {policy.frontend_start}-{last_frontend}, "
            f"step {policy.step}",
        ),
        ("Bad-port pairs", f"{report.bad_port_pairs} skipped" if policy.skip_bad_ports else "not skipped"),
        ("Reserved ports", f"{report.reserved_ports:,}"),
        ("Off-sequence", f"{report.off_sequence} (pre-configured pairs outside the sequence)"),
    ]
    width = max(len(name) for name, _ in lines) + 1
    for name, value in lines:
        click.echo(f"{name + ':':<{width}} {value}")
    click.echo()
    # The tables show the unrounded shares (the report's are rounded for JSON), as metrics computes them.
    ranges = metrics.range_usage(ledger, unusable)
    header = ("RANGE", "APPS", "CAPACITY", "FREE", "LARGEST RUN", "USED", "")
    echo_table(
        [header, *(_row(r.name, r.allocations, r.capacity, r.free, r.largest_free_run, r.utilisation) for r in ranges)],
        "<>>>>><",
    )
    models = metrics.model_usage(ledger, ranges)
    if models:
        click.echo()
        header = ("MODEL", "APPS", "CAPACITY", "FREE", "LARGEST RUN", "USED", "")
        rows = [_row(m.model, m.allocations, m.capacity, m.free, m.largest_free_run, m.utilisation) for m in models]
        echo_table([header, *rows], "<>>>>><")


def _row(name: str, allocations: int, capacity: int, free: int, run: int, utilisation: float) -> tuple[str, ...]:
    from portalloc.core.metrics import text_bar

    return (
        name,
        f"{allocations:,}",
        f"{capacity:,}",
        f"{free:,}",
        f"{run:,}",
        f"{utilisation:.1%}",
        text_bar(utilisation),
    )
