"""``portalloc diff [REV [REV]]``: what a change does to the ledger, for the person reviewing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_json
from portalloc.cli.pairtext import pair_json
from portalloc.cli.params import format_option, pass_settings

if TYPE_CHECKING:  # `portalloc --help` imports every command module, and must not import pydantic
    from portalloc.core.models import Allocation
    from portalloc.core.review import LedgerDiff

WORK_TREE = "the working tree"


def _pair(a: Allocation) -> dict[str, Any]:
    return pair_json(a.model, a.app_num, a.backend, a.frontend)


def _as_json(diff: LedgerDiff, before: str, after: str) -> dict[str, Any]:
    from portalloc.reports import ConflictReport

    return {
        "before": before,
        "after": after,
        "added": [_pair(a) for a in diff.added],
        "released": [_pair(a) for a in diff.released],
        "moved": [
            {**_pair(m.after), "before": {"backend": m.before.backend, "frontend": m.before.frontend}}
            for m in diff.moved
        ],
        "policy": [{"setting": c.setting, "before": c.before, "after": c.after} for c in diff.policy],
        "conflicts": [ConflictReport.of(c).model_dump() for c in diff.conflicts],
        "new_conflicts": [ConflictReport.of(c).model_dump() for c in diff.new_conflicts],
        "off_policy": [{**_pair(a), "reason": reason} for a, reason in diff.off_policy],
    }


def _summary(diff: LedgerDiff) -> str:
    parts = [f"{len(diff.added)} added", f"{len(diff.released)} released", f"{len(diff.moved)} moved"]
    parts.append(f"{len(diff.policy)} policy setting{'s' if len(diff.policy) != 1 else ''} changed")
    if diff.new_conflicts:
        parts.append(f"{len(diff.new_conflicts)} new conflict{'s' if len(diff.new_conflicts) > 1 else ''}")
    elif diff.conflicts:
        parts.append(f"no new conflicts ({len(diff.conflicts)} already there)")
    else:
        parts.append("no conflicts")
    return ", ".join(parts)


def _text(diff: LedgerDiff, before: str, after: str) -> list[str]:
    lines = [f"Ledger changes from {before} to {after}: {_summary(diff)}."]
    lines += [f"  + {a.label()}  {a.backend}/{a.frontend}" for a in diff.added]
    lines += [f"  - {a.label()}  {a.backend}/{a.frontend}" for a in diff.released]
    lines += [
        f"  ~ {m.after.label()}  {m.before.backend}/{m.before.frontend} -> {m.after.backend}/{m.after.frontend}"
        for m in diff.moved
    ]
    lines += [f"  policy {c.setting}: {c.before!r} -> {c.after!r}" for c in diff.policy]
    lines += [f"  conflict (new): {c.describe()}" for c in diff.new_conflicts]
    lines += [f"  outside the policy: {a.label()} {a.backend}/{a.frontend}: {reason}" for a, reason in diff.off_policy]
    return lines


def _markdown(diff: LedgerDiff, before: str, after: str, ledger: str) -> list[str]:
    lines = [f"### portalloc: `{ledger}`", "", f"`{before}` → `{after}`: {_summary(diff)}.", ""]
    rows = [f"| added | `{a.label()}` | {a.backend} | {a.frontend} |" for a in diff.added]
    rows += [f"| released | `{a.label()}` | ~~{a.backend}~~ | ~~{a.frontend}~~ |" for a in diff.released]
    rows += [
        f"| moved | `{m.after.label()}` | {m.before.backend} → {m.after.backend} "
        f"| {m.before.frontend} → {m.after.frontend} |"
        for m in diff.moved
    ]
    if rows:
        lines += ["| change | app | backend | frontend |", "|---|---|---:|---:|", *rows, ""]
    if diff.policy:
        lines += ["| policy setting | before | after |", "|---|---|---|"]
        lines += [f"| `{c.setting}` | `{c.before!r}` | `{c.after!r}` |" for c in diff.policy]
        lines.append("")
    if diff.new_conflicts:
        lines += ["**Conflicts this change leaves** (`portalloc repair` fixes them):", ""]
        lines += [f"- {c.describe()}" for c in diff.new_conflicts]
        lines.append("")
    if diff.off_policy:
        lines += ["**Allocations the policy would refuse:**", ""]
        lines += [f"- `{a.label()}` {a.backend}/{a.frontend}: {reason}" for a, reason in diff.off_policy]
        lines.append("")
    return lines


@click.command()
@click.argument("revisions", nargs=-1, metavar="[REV [REV]]")
@format_option("text", "json", "markdown", default="text", help="markdown: a comment for a pull request.")
@pass_settings
def diff(settings: Settings, revisions: tuple[str, ...], output: str) -> int:
    """Say what a change does to the ledger: allocations added, released, moved, policy changes, conflicts.

    With no REV: HEAD against the working tree. One REV: REV against the working tree.
    Two: the first against the second (for a pull request, the merge base and the head).
    Exit 1 when the change leaves a new conflict or an allocation the policy refuses.

    \b
    Examples:
      portalloc diff                      # the work tree against HEAD
      portalloc diff origin/main HEAD --format markdown
    """
    from portalloc.core.models import Ledger
    from portalloc.core.review import compare
    from portalloc.integrations.history import ledger_at, locate_in_repository

    if len(revisions) > 2:
        raise click.UsageError(f"give at most two revisions, not {len(revisions)}")
    old_rev, new_rev = (*revisions, None, None)[:2] if revisions else ("HEAD", None)
    assert old_rev is not None
    before = ledger_at(settings.ledger_path, old_rev) or Ledger()
    # No second revision: the working tree, read as every other command reads the ledger.
    after = settings.service().ledger() if new_rev is None else ledger_at(settings.ledger_path, new_rev) or Ledger()
    change = compare(before, after)
    after_name = new_rev or WORK_TREE
    if output == "json":
        echo_json(_as_json(change, old_rev, after_name))
    elif output == "markdown":
        name = locate_in_repository(settings.ledger_path)[1]  # as the pull request shows it
        click.echo("\n".join(_markdown(change, old_rev, after_name, name)).rstrip("\n"))
    else:
        click.echo("\n".join(_text(change, old_rev, after_name)))
    return 1 if change.new_conflicts or change.off_policy else 0
