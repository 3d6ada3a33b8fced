"""``portalloc history``: the ledger's git history, per model, with the growth rate and a run-out forecast."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json, echo_table
from portalloc.cli.params import MODEL, OutputFile, follow_symlinks_option, json_option, pass_settings

if TYPE_CHECKING:
    from portalloc.integrations.history import HistoryReport


class _Date(click.ParamType):  # type: ignore[type-arg]
    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"expected a date like 2026-01-31 or 2026-01-31T12:00, not {value!r}", param, ctx)
        # A date without a zone is read as UTC, so the same command means the same window everywhere.
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _forecast(report: HistoryReport, model: str | None) -> str:
    whose = f"{model}'s " if model else ""
    if report.per_week is None:
        return f"No forecast: {report.no_forecast}."
    if report.weeks_left is None:
        text = f"{whose}allocations are not growing ({report.per_week:+.1f} a week); the range does not run out."
        return text[0].upper() + text[1:]
    return (
        f"At {whose}{report.per_week:.1f} new apps a week, the range ({report.free_pairs:,} free pairs) "
        f"is full in about {report.weeks_left:,.0f} weeks."
    )


@click.command()
@click.option("--model", type=MODEL, default=None, help="Only this model's apps.")
@click.option("--since", type=_Date(), default=None, help="Start the window at this date (UTC unless it says).")
@click.option("--png", type=OutputFile(), default=None, help="Also draw it (needs portalloc[plot]).")
@follow_symlinks_option
@json_option
@pass_settings
def history(
    settings: Settings,
    model: str | None,
    since: datetime | None,
    png: Path | None,
    follow_symlinks: bool,
    as_json: bool,
) -> int:
    """Allocations and releases over the ledger's git history, the growth rate, and when the range runs out.

    Reads every committed version of the ledger on the current branch (first parent).
    Uncommitted changes are not history yet.

    \b
    Examples:
      portalloc history
      portalloc history --model model_a --since 2026-01-01 --json
    """
    from portalloc.integrations.history import ledger_versions, summarize

    report = summarize(ledger_versions(settings.ledger_path), since=since, model=model)
    for version in report.unreadable:
        click.echo(f"Warning: skipped {version.commit[:12]} ({version.subject}): {version.problem}", err=True)
    if png is not None:
        from portalloc.integrations.plot import draw_history

        draw_history(report, png, follow_symlinks=follow_symlinks)
        click.echo(f"Wrote {png}", err=True)  # on stderr: stdout may be --json
    if as_json:
        echo_json(_as_json(report, model))
    else:
        _echo_text(report, settings.ledger_path, since is not None, model)
    return 0


def _as_json(report: HistoryReport, model: str | None) -> dict[str, Any]:
    """The ``--json`` object: the window, each version, each model, the growth and the forecast."""
    return {
        "start": report.start.isoformat() if report.start else None,
        "end": report.end.isoformat() if report.end else None,
        "model": model,
        "versions": [
            {
                "commit": p.version.commit,
                "date": p.version.when.isoformat(),
                "subject": p.version.subject,
                "allocations": p.allocations,
                "added": p.added,
                "released": p.released,
            }
            for p in report.points
        ],
        "models": [m._asdict() for m in report.models],
        "net_growth": report.net_growth,
        "per_week": report.per_week,
        "free_pairs": report.free_pairs,
        "weeks_left": report.weeks_left,
        "no_forecast": report.no_forecast,
    }


def _echo_text(report: HistoryReport, ledger_path: Path, windowed: bool, model: str | None) -> None:
    """The report for a person: one row per version, one per model, then the growth and the forecast."""
    if not report.points:
        click.echo(f"No committed versions of {ledger_path}" + (" since then." if windowed else "."))
        return
    assert report.start is not None and report.end is not None  # there are points
    weeks = (report.end - report.start).total_seconds() / (7 * 24 * 3600)
    click.echo(
        f"{len(report.points)} versions of {ledger_path} from {report.start:%Y-%m-%d} "
        f"to {report.end:%Y-%m-%d} ({weeks:.1f} weeks):"
    )
    rows = [("DATE", "APPS", "ADDED", "RELEASED", "COMMIT")]
    rows += [
        (f"{p.version.when:%Y-%m-%d}", str(p.allocations), f"+{p.added}", f"-{p.released}", p.version.subject)
        for p in report.points
    ]
    echo_table(rows, "<>>><")
    click.echo("")
    table = [("MODEL", "APPS", "ADDED", "RELEASED")]
    table += [(m.model, str(m.allocations), f"+{m.added}", f"-{m.released}") for m in report.models]
    echo_table(table, "<>>>")
    click.echo("")
    click.echo(f"Net growth: {report.net_growth:+d} allocations. {_forecast(report, model)}")
