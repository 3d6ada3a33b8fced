"""Drawing ``portalloc history`` as a PNG with matplotlib (the optional extra ``portalloc[plot]``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from portalloc.errors import PortallocError
from portalloc.integrations.history import HistoryReport
from portalloc.storage.files import atomic_write


def draw_history(report: HistoryReport, path: Path, *, follow_symlinks: bool = False) -> None:
    """Allocations over time, one step line in total, written to ``path`` as a PNG.

    ``path`` that is a symbolic link is refused unless ``follow_symlinks`` (``files.output_target``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: this runs in terminals and CI
        import matplotlib.pyplot as plt
    except ImportError:
        raise PortallocError("--png needs matplotlib: pip install 'portalloc[plot]'") from None
    figure, axes = plt.subplots(figsize=(8, 4))
    try:
        # matplotlib converts datetimes itself; its stubs only know arrays.
        dates: list[Any] = [point.version.when for point in report.points]
        axes.step(dates, [point.allocations for point in report.points], where="post", label="allocations")
        axes.set_ylabel("allocations")
        title = "portalloc ledger history"
        if report.per_week is not None:
            title += f": {report.per_week:.1f} new apps a week"
        axes.set_title(title)
        axes.legend(loc="upper left")
        figure.autofmt_xdate()
        image = io.BytesIO()
        figure.savefig(image, format="png", dpi=100)
    finally:
        plt.close(figure)
    # Replaced atomically, as every file portalloc writes: never half a PNG, never into a FIFO or a device.
    try:
        atomic_write(path, image.getvalue(), follow_symlinks=follow_symlinks)
    except OSError as error:
        raise PortallocError(f"cannot write {path}: {error.strerror or error}") from None
