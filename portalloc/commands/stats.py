"""``portalloc stats``: how full the ledger is."""

from __future__ import annotations

import click

from portalloc.commands.options import Settings, echo_json, json_option, pass_settings


@click.command()
@json_option
@pass_settings
def stats(settings: Settings, as_json: bool) -> int:
    """Show allocations, models, capacity and free pairs.

    \b
    Example:
      portalloc stats --json
    """
    service = settings.service()
    usage = service.stats()
    policy = service.ledger().policy
    if as_json:
        echo_json({"ledger": str(settings.ledger_path), **usage._asdict(), "policy": policy.model_dump()})
        return 0
    last_backend, last_frontend = policy.pair(policy.pair_count - 1)
    lines = [
        ("Ledger", str(settings.ledger_path)),
        ("Allocations", f"{usage.allocations:,} ({usage.models:,} model{'' if usage.models == 1 else 's'})"),
        ("Free pairs", f"{usage.free_pairs:,} of {usage.capacity:,}"),
        (
            "Policy",
            f"backend {policy.backend_start}-{last_backend}, frontend {policy.frontend_start}-{last_frontend}, "
            f"step {policy.step}",
        ),
        ("Bad-port pairs", f"{usage.bad_port_pairs} skipped" if policy.skip_bad_ports else "not skipped"),
        ("Off-sequence", f"{usage.off_sequence} (pre-configured pairs outside the sequence)"),
    ]
    width = max(len(name) for name, _ in lines) + 1
    for name, value in lines:
        click.echo(f"{name + ':':<{width}} {value}")
    return 0
