"""``portalloc export``: write the allocations out as a ``port_config.json`` list, CSV or JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from portalloc.cli.context import Settings
from portalloc.cli.pairtext import json_text, pair_json
from portalloc.cli.params import MODEL, OutputFile, follow_symlinks_option, format_option, pass_settings

if TYPE_CHECKING:  # `portalloc --help` imports every command module, and must not import pydantic
    from portalloc.core.models import Allocation


def render(allocations: Sequence[Allocation], fmt: str) -> str:
    """The allocations in ``fmt``: ``port-config`` (what ``import`` and ``--config`` read), ``csv`` or ``json``."""
    if fmt == "csv":
        from portalloc.integrations.importers import EXPORT_FIELDS  # the header import recognises

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(EXPORT_FIELDS)
        writer.writerows(a.model_dump().values() for a in allocations)
        return buffer.getvalue()
    if fmt == "port-config":
        rows = [
            {"model": a.model, "app_number": a.app_num, "backend_port": a.backend, "frontend_port": a.frontend}
            for a in allocations
        ]
    else:
        rows = [pair_json(a.model, a.app_num, a.backend, a.frontend) for a in allocations]
    return json_text(rows) + "\n"


@click.command()
@format_option(
    "port-config",
    "csv",
    "json",
    default="json",
    help="port-config: the platform's port_config.json list; csv: model,app_num,backend,frontend; "
    "json: what list --json prints.",
    dest="fmt",
)
@click.option(
    "-o",
    "--output",
    type=OutputFile(),
    default=None,
    help="Write to this file (replaced atomically) instead of standard output.",
)
@follow_symlinks_option
@click.option("--model", type=MODEL, default=None, help="Only this model's apps.")
@pass_settings
def export(settings: Settings, fmt: str, output: Path | None, follow_symlinks: bool, model: str | None) -> int:
    """Write every allocation out, sorted by model and app number.

    \b
    Examples:
      portalloc export --format csv -o ports.csv
      portalloc export --format port-config > port_config.json
    """
    allocations = [a for a in settings.service().get_all_allocations() if model is None or a.model == model]
    text = render(allocations, fmt)
    if output is None:
        click.echo(text, nl=False)
        return 0
    from portalloc.storage.files import atomic_write

    atomic_write(output, text.encode("utf-8"), follow_symlinks=follow_symlinks)
    click.echo(f"Wrote {len(allocations)} allocations to {output}.", err=True)
    return 0
