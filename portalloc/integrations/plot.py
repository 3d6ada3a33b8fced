"""Drawing ``portalloc history`` as a PNG with matplotlib (the optional extra ``portalloc[plot]``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portalloc.errors import PortallocError
from portalloc.integrations.history import HistoryReport
from portalloc.storage.files import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def history_figure(report: HistoryReport) -> Figure:
    """Allocations over time (one step line in total) under the capacity line, whole-number ticks."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise PortallocError("--png needs matplotlib: pip install 'portalloc[plot]'") from None
    # A bare Figure, not pyplot: no global state and no display (this runs in terminals and CI).
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    # matplotlib converts datetimes itself; its stubs only know arrays.
    dates: list[Any] = [point.version.when for point in report.points]
    counts = [point.allocations for point in report.points]
    axes.step(dates, counts, where="post", label="allocations")
    if counts:
        # What the allocations can grow to: those there now plus the free pairs.
        capacity = counts[-1] + report.free_pairs
        axes.axhline(capacity, color="tab:red", linestyle="--", label=f"capacity ({capacity:,} pairs)")
    axes.set_ylabel("allocations")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # allocations are whole numbers
    title = "portalloc ledger history"
    title += f": {report.per_week:+.1f} apps a week" if report.per_week is not None else ": no growth rate yet"
    axes.set_title(title)
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    return figure


def draw_history(report: HistoryReport, path: Path, *, follow_symlinks: bool = False) -> None:
    """``history_figure(report)`` written to ``path`` as a PNG.

    ``path`` that is a symbolic link is refused unless ``follow_symlinks`` (``files.output_target``).
    """
    image = io.BytesIO()
    history_figure(report).savefig(image, format="png", dpi=100)
    # Replaced atomically, as every file portalloc writes: never half a PNG, never into a FIFO or a device.
    try:
        atomic_write(path, image.getvalue(), follow_symlinks=follow_symlinks)
    except OSError as error:
        raise PortallocError(f"cannot write {path}: {error.strerror or error}") from None
