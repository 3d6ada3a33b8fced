"""How commands print: JSON (a report's dump, or any value), tables measured in terminal cells.

A report's shape lives in ``portalloc/reports.py``; this module only writes it out.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.pairtext import json_text

if TYPE_CHECKING:
    from pydantic import BaseModel

    from portalloc.core.models import Allocation


def echo_report(report: BaseModel | Sequence[BaseModel]) -> None:
    """Print a report (``portalloc.reports``), or a list of them, as ``--json`` prints it."""
    from portalloc.reports import dump_json

    click.echo(dump_json(report))


def echo_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    click.echo(json_text(value))


def echo_released(released: Sequence[Allocation], as_json: bool) -> None:
    """Print released allocations: ``Released model/N (backend/frontend).`` lines, or a JSON array."""
    if as_json:
        echo_report(released)
        return
    for a in released:
        click.echo(f"Released {a.label()} ({a.backend}/{a.frontend}).")


#: A column is at most this many terminal cells wide; a longer cell (a 200-character model
#: name) runs past its column on its own row instead of padding every other row.
MAX_COLUMN_WIDTH = 40


def display_width(text: str) -> int:
    """How many terminal cells ``text`` takes: East Asian wide characters two, combining marks none."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def echo_table(rows: Sequence[Sequence[str]], align: str) -> None:
    """Print ``rows`` (the first is the header) as columns two spaces apart; ``align`` is ``<`` or ``>`` per column.

    Columns are measured in terminal cells (``display_width``), so ``モデル`` lines up with
    ``model``; a column is as wide as its widest cell up to ``MAX_COLUMN_WIDTH``.
    """
    measured = [[display_width(cell) for cell in row] for row in rows]
    widths = [
        max([row[column] for row in measured if row[column] <= MAX_COLUMN_WIDTH] or [0]) for column in range(len(align))
    ]
    lines = []
    for row, cells in zip(rows, measured, strict=True):
        padded = [
            (cell + " " * (width - used)) if side == "<" else (" " * (width - used) + cell)
            for cell, used, side, width in zip(row, cells, align, widths, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    click.echo("\n".join(lines))  # one write: a line at a time is most of the cost of a 30,000-row table
