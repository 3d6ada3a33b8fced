"""``portalloc stats``: how full the ledger is, overall, per range (pools, shared) and per model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.options import Settings, echo_json, echo_table, pass_settings

if TYPE_CHECKING:  # `portalloc --help` imports every command module, and must not import pydantic
    from portalloc.core.allocator import Usage


@click.command()
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "prometheus"]),
    default="text",
    show_default=True,
    help="prometheus: the text exposition format, for node_exporter's textfile collector or a scraper.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text (--format json).")
@pass_settings
def stats(settings: Settings, output: str, as_json: bool) -> int:
    """Show allocations, capacity and free pairs: overall, per range (each pool, the shared range) and per model.

    Pairs with a port in this machine's ephemeral range or among the ports the OS
    reserves are never handed out here: the free pairs say so, and the per-range and
    per-model rows count only the pairs usable on this machine.

    \b
    Examples:
      portalloc stats --json
      portalloc stats --format prometheus > /var/lib/node_exporter/portalloc.prom
    """
    from portalloc.core import metrics

    if as_json and output not in ("text", "json"):
        raise click.UsageError(f"--json and --format {output} go against each other")
    service = settings.service()
    ledger = service.ledger()
    unusable = service.unusable_here(ledger.policy)
    if output == "prometheus":
        click.echo(metrics.prometheus_text(ledger, unusable), nl=False)
        return 0
    usage = service.stats()
    policy = ledger.policy
    ranges = metrics.range_usage(ledger, unusable)
    models = metrics.model_usage(ledger, ranges)
    if as_json or output == "json":
        echo_json(
            {
                "ledger": str(settings.ledger_path),
                **usage._asdict(),
                "reserved_ports": len(policy.reserved_ports()),
                "policy": policy.model_dump(),
                "ranges": [
                    {"range": "shared" if r.pool is None else "pool", "model": r.pool.model if r.pool else None}
                    | _figures(r.allocations, r.capacity, r.free, r.largest_free_run, r.utilisation)
                    for r in ranges
                ],
                "per_model": [
                    {"model": m.model, "pool": m.pool is not None}
                    | _figures(m.allocations, m.capacity, m.free, m.largest_free_run, m.utilisation)
                    for m in models
                ],
            }
        )
        return 0
    last_backend, last_frontend = policy.pair(policy.pair_count - 1)
    lines = [
        ("Ledger", str(settings.ledger_path)),
        ("Allocations", f"{usage.allocations:,} ({usage.models:,} model{'' if usage.models == 1 else 's'})"),
        ("Free pairs", _free_pairs(usage)),
        (
            "Policy",
            f"backend {policy.backend_start}-{last_backend}, frontend {policy.frontend_start}-{last_frontend}, "
            f"step {policy.step}",
        ),
        ("Bad-port pairs", f"{usage.bad_port_pairs} skipped" if policy.skip_bad_ports else "not skipped"),
        ("Reserved ports", f"{len(policy.reserved_ports()):,}"),
        ("Off-sequence", f"{usage.off_sequence} (pre-configured pairs outside the sequence)"),
    ]
    width = max(len(name) for name, _ in lines) + 1
    for name, value in lines:
        click.echo(f"{name + ':':<{width}} {value}")
    click.echo()
    header = ("RANGE", "APPS", "CAPACITY", "FREE", "LARGEST RUN", "USED", "")
    echo_table(
        [header, *(_row(r.name, r.allocations, r.capacity, r.free, r.largest_free_run, r.utilisation) for r in ranges)],
        "<>>>>><",
    )
    if models:
        click.echo()
        header = ("MODEL", "APPS", "CAPACITY", "FREE", "LARGEST RUN", "USED", "")
        rows = [_row(m.model, m.allocations, m.capacity, m.free, m.largest_free_run, m.utilisation) for m in models]
        echo_table([header, *rows], "<>>>>><")
    return 0


def _free_pairs(usage: Usage) -> str:
    """``1,492 of 1,494``; with the pairs this machine cannot hand out named apart when there are any."""
    if usage.usable_here == usage.capacity:
        return f"{usage.free_pairs:,} of {usage.capacity:,}"
    return (
        f"{usage.free_here:,} of {usage.usable_here:,} usable on this machine "
        f"({usage.free_pairs:,} of {usage.capacity:,} in the policy; "
        f"{usage.capacity - usage.usable_here:,} touch the OS ephemeral range or ports the OS reserves)"
    )


def _figures(allocations: int, capacity: int, free: int, run: int, utilisation: float) -> dict[str, Any]:
    return {
        "allocations": allocations,
        "capacity": capacity,
        "free_pairs": free,
        "largest_free_run": run,
        "utilisation": round(utilisation, 4),
    }


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
