"""The ledger's own git history: every committed version, parsed, and what it says about growth.

Because the ledger lives in git, its past is there to read: ``ledger_versions`` runs
one ``git log`` of the ledger file (first parent, so a merged branch counts once, on
the day it landed) and one ``git cat-file --batch`` for every version's bytes.
``summarize`` is pure: allocations and releases per version and per model, the growth
rate, and when the policy runs out at that rate. ``ledger_at`` reads one revision,
for ``portalloc diff``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from portalloc.core.audit import usage
from portalloc.core.limits import MAX_LEDGER_BYTES
from portalloc.core.models import Ledger
from portalloc.core.review import compare
from portalloc.errors import GitError, LedgerCorrupt
from portalloc.integrations.git import git_output, repository_root
from portalloc.storage.codec import parse_ledger

_WEEK = 7 * 24 * 3600
#: A growth rate is told only over at least this long a window (a few minutes of
#: history once "forecast" 156,800 new apps a week) ...
MIN_FORECAST_SECONDS = _WEEK
#: ... and from at least this many counts (the versions, plus the state at --since).
MIN_FORECAST_POINTS = 3
REMOVED = "the commit removed the ledger"


class Version(NamedTuple):
    """One commit that changed the ledger: its id, committer date, subject and the ledger it holds.

    ``ledger`` is ``None`` when the commit deleted the file or the file did not parse
    (a commit with conflict markers, say); ``problem`` then says which.
    """

    commit: str
    when: datetime
    subject: str
    ledger: Ledger | None
    problem: str | None = None


class Point(NamedTuple):
    """The ledger after one version: how many allocations, and how many it added and released."""

    version: Version
    allocations: int
    added: int
    released: int


class ModelGrowth(NamedTuple):
    """One model over the window: allocations at the end, added and released within it."""

    model: str
    allocations: int
    added: int
    released: int


class HistoryReport(NamedTuple):
    """What ``portalloc history`` shows; ``per_week`` and ``weeks_left`` are ``None`` when they cannot be told."""

    start: datetime | None
    end: datetime | None
    points: list[Point]
    models: list[ModelGrowth]
    net_growth: int
    per_week: float | None
    free_pairs: int
    weeks_left: float | None
    unreadable: list[Version]
    #: Why there is no growth rate (too short a window, too few versions); ``None`` when there is one.
    no_forecast: str | None = None


def locate_in_repository(ledger_path: Path) -> tuple[Path, str]:
    """The repository root and the ledger's path inside it, as git names it."""
    directory = Path(ledger_path).absolute().parent
    if not directory.is_dir():
        raise GitError(f"{directory} does not exist, so {ledger_path} has no git history")
    root = repository_root(directory)
    relative = Path(ledger_path).absolute().resolve().relative_to(root.resolve())
    return root, str(PurePosixPath(relative))


def _parse_blob(data: bytes, name: str) -> tuple[Ledger | None, str | None]:
    if len(data) > MAX_LEDGER_BYTES:
        return None, f"{len(data):,} bytes; the limit is {MAX_LEDGER_BYTES:,}"
    try:
        return parse_ledger(data, name), None
    except LedgerCorrupt as error:
        return None, str(error)


def ledger_at(ledger_path: Path, revision: str) -> Ledger | None:
    """The ledger as committed at ``revision``, or ``None`` if the file is not in that commit.

    Raises ``GitError`` for an unknown revision or outside a repository, ``LedgerCorrupt``
    when the committed file is not a ledger.
    """
    root, relative = locate_in_repository(ledger_path)
    try:
        commit = git_output(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    except GitError:
        raise GitError(f"{revision!r} is not a commit of the repository at {root}") from None
    spec = f"{commit.decode().strip()}:{relative}"
    header, _, rest = git_output(root, "cat-file", "--batch", stdin=f"{spec}\n".encode()).partition(b"\n")
    if header.endswith(b" missing"):
        return None
    size = int(header.split()[2])
    ledger, problem = _parse_blob(rest[:size], f"{relative} at {revision}")
    if ledger is None:
        raise LedgerCorrupt(problem or f"{relative} at {revision} is not a ledger")
    return ledger


def ledger_versions(ledger_path: Path) -> list[Version]:
    """Every commit of the current branch (first parent) that changed the ledger, oldest first."""
    root, relative = locate_in_repository(ledger_path)
    try:
        git_output(root, "rev-parse", "--verify", "--quiet", "HEAD")
    except GitError:
        return []  # a repository without commits has no history yet
    log = git_output(root, "log", "--first-parent", "--reverse", "--format=%H%x00%ct%x00%s", "HEAD", "--", relative)
    entries = [line.split(b"\x00", 2) for line in log.splitlines() if line]
    if not entries:
        return []
    request = b"".join(commit + b":" + relative.encode() + b"\n" for commit, _, _ in entries)
    blobs = git_output(root, "cat-file", "--batch", stdin=request)
    versions: list[Version] = []
    position = 0
    for commit, stamp, subject in entries:
        end = blobs.index(b"\n", position)
        header = blobs[position:end]
        position = end + 1
        when = datetime.fromtimestamp(int(stamp), tz=timezone.utc)
        name = commit.decode()
        if header.endswith(b" missing"):
            versions.append(Version(name, when, subject.decode("utf-8", "replace"), None, REMOVED))
            continue
        size = int(header.split()[2])
        ledger, problem = _parse_blob(blobs[position : position + size], f"{relative} at {name[:12]}")
        position += size + 1
        versions.append(Version(name, when, subject.decode("utf-8", "replace"), ledger, problem))
    return versions


def summarize(versions: Sequence[Version], *, since: datetime | None = None, model: str | None = None) -> HistoryReport:
    """Growth over the window from ``since`` (else the first version) to the last version. Pure.

    The state at ``since`` is the last version before it (none: an empty ledger);
    without ``since`` it is the first version, whose rows are counted as added in its
    row but not as growth. Only
    ``model``'s apps count when it is given. The forecast divides the last version's
    free pairs by the net new allocations per week; there is no rate (``no_forecast``
    says why) over a window shorter than ``MIN_FORECAST_SECONDS`` or with fewer than
    ``MIN_FORECAST_POINTS`` counts, and no run-out date when allocations are not growing.
    """

    def selected(ledger: Ledger) -> Ledger:
        if model is None:
            return ledger
        return ledger.with_allocations(a for a in ledger.allocations if a.model == model)

    readable = [(v, v.ledger) for v in versions if v.ledger is not None]
    unreadable = [v for v in versions if v.ledger is None and v.problem != REMOVED]
    before = [ledger for v, ledger in readable if since is not None and v.when < since]
    window = [(v, ledger) for v, ledger in readable if since is None or v.when >= since]
    previous = selected(before[-1]) if before else Ledger()
    baseline = len(previous.allocations)
    start = since if since is not None else (window[0][0].when if window else None)
    points: list[Point] = []
    added: dict[str, int] = {}
    released: dict[str, int] = {}
    for version, ledger in window:
        current = selected(ledger)
        change = compare(previous, current)
        for allocation in change.added:
            added[allocation.model] = added.get(allocation.model, 0) + 1
        for allocation in change.released:
            released[allocation.model] = released.get(allocation.model, 0) + 1
        points.append(Point(version, len(current.allocations), len(change.added), len(change.released)))
        previous = current
    final = previous
    counts: dict[str, int] = {}
    for allocation in final.allocations:
        counts[allocation.model] = counts.get(allocation.model, 0) + 1
    names = sorted({*counts, *added, *released})
    models = [ModelGrowth(name, counts.get(name, 0), added.get(name, 0), released.get(name, 0)) for name in names]
    end = window[-1][0].when if window else None
    # Without --since the window opens at the first version, so its rows are the start, not growth.
    if since is None and points:
        baseline = points[0].allocations
    net = len(final.allocations) - baseline
    seconds = (end - start).total_seconds() if start is not None and end is not None else 0.0
    no_forecast = _too_little(seconds, len(points) + (1 if since is not None else 0))
    per_week = net / (seconds / _WEEK) if no_forecast is None else None
    free = usage(readable[-1][1]).free_pairs if readable else 0
    weeks_left = free / per_week if per_week is not None and per_week > 0 else None
    return HistoryReport(start, end, points, models, net, per_week, free, weeks_left, unreadable, no_forecast)


def _too_little(seconds: float, counts: int) -> str | None:
    """Why a window of ``seconds`` with ``counts`` known counts is too little to tell a rate, or ``None``."""
    if counts < MIN_FORECAST_POINTS:
        return f"{counts} version{'' if counts == 1 else 's'} in the window; a growth rate needs {MIN_FORECAST_POINTS}"
    if seconds < MIN_FORECAST_SECONDS:
        days = MIN_FORECAST_SECONDS // (24 * 3600)
        return f"the window is {_duration(seconds)} long; a growth rate needs at least {days} days"
    return None


def _duration(seconds: float) -> str:
    for unit, size in (("day", 24 * 3600), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds / size
            return f"{count:.1f} {unit}s" if unit == "day" else f"{count:.0f} {unit}{'' if round(count) == 1 else 's'}"
    return f"{seconds:.0f} seconds"
