"""``portalloc dotenv MODEL APP_NUM PATH``: write the pair into a marked block of a ``.env`` file."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.commands.options import Settings, key_arguments, pair_for, pass_settings, prefix_option


@click.command()
@key_arguments
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@prefix_option
@pass_settings
def dotenv(settings: Settings, model: str, app_num: int, path: Path, prefix: str) -> int:
    """Write BACKEND_PORT and FRONTEND_PORT of MODEL's app APP_NUM into PATH (a .env file).

    The variables go in a block between '# >>> portalloc: MODEL/APP_NUM >>>' and
    '# <<< portalloc <<<', which is replaced on the next run; every other line of
    PATH is kept byte for byte. PATH is created if missing and replaced atomically.
    """
    from portalloc.envfile import assignments, check_block, update_block
    from portalloc.envvars import port_variables
    from portalloc.files import atomic_write
    from portalloc.ledger import read_bytes
    from portalloc.limits import MAX_ENV_BYTES

    # Fails on a missing directory, a FIFO or a device (/dev/null) before anything is allocated.
    old = read_bytes(path, ".env file", MAX_ENV_BYTES)
    check_block(old or b"", where=str(path))  # and on a damaged block
    backend, frontend = pair_for(settings, model, app_num)
    variables = port_variables(backend, frontend, prefix)
    data = old or b""
    new = update_block(data, f"{model}/{app_num}", variables, where=str(path))
    for name, (line, value) in assignments(new, outside_block=True).items():
        if name in variables:
            click.echo(
                f"Warning: {path} also sets {name}={value} on line {line}, outside the portalloc block; "
                "a loader may use either value",
                err=True,
            )
    assigned = " ".join(f"{name}={value}" for name, value in variables.items())
    if new == old:
        click.echo(f"{path} already has {assigned} ({model}/{app_num}); unchanged.")
        return 0
    atomic_write(path, new)
    click.echo(f"{'Updated' if old is not None else 'Created'} {path}: {assigned} ({model}/{app_num})")
    return 0
