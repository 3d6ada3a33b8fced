"""``portalloc dotenv MODEL APP_NUM PATH``: write the pair into a marked block of a ``.env`` file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from portalloc.cli.context import Settings
from portalloc.cli.params import OutputFile, follow_symlinks_option, key_arguments, pass_settings, prefix_option


@click.command()
@key_arguments
@click.argument("path", type=OutputFile())
@prefix_option
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the block of another app if PATH has one (by default one file holds one app's block).",
)
@follow_symlinks_option
@pass_settings
def dotenv(
    settings: Settings, model: str, app_num: int, path: Path, prefix: str, replace: bool, follow_symlinks: bool
) -> int:
    """Write BACKEND_PORT and FRONTEND_PORT of MODEL's app APP_NUM into PATH (a .env file).

    The variables go in a block between '# >>> portalloc: MODEL/APP_NUM >>>' and
    '# <<< portalloc <<<': a new block at the top (after a leading comment), so that
    lines below can refer to ${BACKEND_PORT}; an existing block is replaced where it
    is. Every other byte of PATH is kept. PATH is created if missing and replaced
    atomically; a PATH that is a symbolic link is refused unless --follow-symlinks.
    Everything about PATH is checked before a port is allocated.

    \b
    Example:
      portalloc dotenv model_a 1 apps/model_a/app1/.env
    """
    from portalloc.errors import EnvFileError
    from portalloc.integrations.envfile import block_label, check_block, update_block
    from portalloc.integrations.envvars import port_variables
    from portalloc.storage.files import atomic_write, output_target

    label = f"{model}/{app_num}"
    target = output_target(path, follow_symlinks=follow_symlinks)  # a link, refused before anything is allocated
    old = _read_target(target)
    data = old or b""
    check_block(data, where=str(path))  # a damaged block or a UTF-16 file, before anything is allocated
    current = block_label(data)
    if current is not None and current != label and not replace:
        raise EnvFileError(
            f"{path} holds the portalloc block of {current}; one file holds one app's block "
            f"(pass --replace to give it to {label})"
        )
    backend, frontend, _worktree = settings.pair_for(model, app_num)
    variables = port_variables(backend, frontend, prefix)
    new = update_block(data, label, variables, where=str(path))
    _warn_outside_the_block(path, new, variables)
    assigned = " ".join(f"{name}={value}" for name, value in variables.items())
    if new == old:
        click.echo(f"{path} already has {assigned} ({label}); unchanged.")
        return 0
    atomic_write(target, new)
    click.echo(f"{'Updated' if old is not None else 'Created'} {path}: {assigned} ({label})")
    return 0


def _warn_outside_the_block(path: Path, data: bytes, variables: dict[str, str]) -> None:
    """Warn about lines of ``data`` outside the block that set, or refer too early to, its ``variables``."""
    from portalloc.integrations.envfile import assignments, references_above_block

    for name, (line, value) in assignments(data, outside_block=True).items():
        if name in variables:
            click.echo(
                f"Warning: {path} also sets {name}={value} on line {line}, outside the portalloc block; "
                "a loader may use either value",
                err=True,
            )
    for line, name in references_above_block(data, list(variables)):
        click.echo(
            f"Warning: {path} line {line} refers to {name} above the portalloc block; "
            "loaders expand it from lines above only, so it reads as empty (move the block up)",
            err=True,
        )


def _read_target(path: Path) -> bytes | None:
    """PATH's bytes (``None`` if it does not exist yet), once it is known that it can be replaced."""
    from portalloc.core.limits import MAX_ENV_BYTES
    from portalloc.errors import EnvFileError
    from portalloc.storage.files import read_regular_file

    directory = Path(os.path.realpath(path)).parent
    try:
        data: bytes | None = read_regular_file(path, ".env file", MAX_ENV_BYTES).data
    except FileNotFoundError:
        if not directory.is_dir():
            raise EnvFileError(f"cannot write {path}: the directory {directory} does not exist") from None
        data = None
    except OSError as error:
        raise EnvFileError(f"cannot read {path}: {error.strerror or error}") from None
    # atomic_write renames a new file over PATH: that needs the directory; a read-only PATH is the user's "no".
    if not os.access(directory, os.W_OK | os.X_OK) or (data is not None and not os.access(path, os.W_OK)):
        raise EnvFileError(f"cannot write {path}: permission denied (nothing was allocated)")
    return data
