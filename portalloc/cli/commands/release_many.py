"""``portalloc release-many [FILE|-]``: release a batch of keys under one lock with one write."""

from __future__ import annotations

import click

from portalloc.cli.context import Settings
from portalloc.cli.output import echo_released
from portalloc.cli.params import batch_arguments, json_option, pass_settings
from portalloc.errors import PortallocError


@click.command(name="release-many")
@batch_arguments
@json_option
@pass_settings
def release_many(settings: Settings, source: str, fmt: str, as_json: bool) -> int:
    """Release every key in FILE (default: standard input), in the formats get-many reads.

    Keys that hold nothing are named on stderr; the exit is 1 only when none of the
    keys held anything (an empty FILE is fine). A bad line anywhere means nothing is
    released.

    \b
    Examples:
      printf 'model_a 1\\nmodel_a 2\\n' | portalloc release-many
      portalloc release-many keys.txt --json
    """
    from portalloc.cli.keylist import read_keys

    keys = read_keys(source, fmt)
    released = settings.service().release_many(keys)  # refuses a ledger that is not valid, even for no keys
    if not keys:
        echo_released([], as_json)  # an empty batch has nothing to release, and that is not an error
        return 0
    freed = {a.key for a in released}
    idle = sorted({key for key in keys if key not in freed})
    for model, app_num in idle:
        click.echo(f"Note: {model}/{app_num} had no allocation", err=True)
    if not released:
        raise PortallocError(f"none of the {len(set(keys))} keys has an allocation in {settings.ledger_path}")
    echo_released(released, as_json)
    return 0
