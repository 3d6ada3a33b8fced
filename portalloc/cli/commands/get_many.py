"""``portalloc get-many [FILE|-]``: allocate a whole batch of keys under one lock with one write."""

from __future__ import annotations

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_report
from portalloc.cli.params import batch_arguments, json_option, pass_settings


@click.command(name="get-many")
@batch_arguments
@json_option
@pass_settings
def get_many(settings: Settings, source: str, fmt: str, as_json: bool) -> int:
    """Print the pair of every key in FILE (default: standard input), allocating the new ones.

    FILE holds MODEL APP_NUM lines, JSON lines or a JSON array of {"model", "app_num"}
    objects. All keys are allocated under one lock with one ledger write; a bad line
    anywhere means nothing is allocated.

    \b
    Examples:
      printf 'model_a 1\\nmodel_a 2\\n' | portalloc get-many
      portalloc get-many keys.txt --json
    """
    from portalloc.cli.keylist import read_keys
    from portalloc.reports import used_pair

    keys = read_keys(source, fmt)
    # An empty batch (a generator that made no apps today) is not an error, and takes no lock.
    pairs = settings.service().allocate_many(keys)
    if as_json:
        echo_report([used_pair(p) for p in pairs])
        return 0
    for p in map(used_pair, pairs):
        where = "" if p.worktree is None else f" (worktree {p.worktree})"
        click.echo(f"{p.model}/{p.app_num}: backend {p.backend}, frontend {p.frontend}{where}")
    return 0
