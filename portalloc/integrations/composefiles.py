"""Which compose files make a project, and the variables they are read with, as docker compose v2 decides.

Measured against ``docker compose config`` (v2.40, the suite's judge):

- Files: the ``-f`` files in order; else ``COMPOSE_FILE`` (split at
  ``COMPOSE_PATH_SEPARATOR``, default ``:``; relative to the working directory); else
  discovery: the first of ``compose.yaml``, ``compose.yml``, ``docker-compose.yml``,
  ``docker-compose.yaml`` in the working directory or the nearest parent that has one,
  plus the first override file beside it (``compose.override.yml``, …).
- The working directory is ``--project-directory`` when given, else the first ``-f``
  file's directory, else the current directory. The project directory is
  ``--project-directory``, else the first file's directory.
- Variables: the environment, then the working directory's ``.env`` (where
  ``COMPOSE_FILE`` may come from), then the project directory's ``.env``, each filling
  in only what is not set yet. ``--env-file`` (repeatable, a later file winning over an
  earlier one) replaces both ``.env`` files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from portalloc.core.limits import MAX_ENV_BYTES
from portalloc.errors import ComposeFileError, EnvFileError
from portalloc.storage.files import read_regular_file

#: compose's own names, in the order it prefers them (compose-go ``cli.DefaultFileNames``).
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
#: The override files it then looks for beside the one it found, in order.
OVERRIDE_FILES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)


class ComposeSources(NamedTuple):
    """The files of one compose project, in merge order, and the variables for their ``${…}``."""

    files: list[Path]
    project_dir: Path
    variables: dict[str, str]
    #: The environment alone: a file's ``include`` reads its own ``.env`` over it.
    environ: dict[str, str]


def read_variables(env_file: Path, *, required: bool, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment laid over ``env_file``, read as compose reads it; a missing file is ``{}`` unless required."""
    from portalloc.integrations.envfile import parse

    try:
        data = read_regular_file(env_file, "env file", MAX_ENV_BYTES).data
    except FileNotFoundError:
        if required:
            raise ComposeFileError(f"env file {env_file} does not exist") from None
        return dict(environ)
    except OSError as error:
        raise ComposeFileError(f"cannot read {env_file}: {error.strerror or error}") from None
    try:
        values = parse(data, environ)
    except EnvFileError as error:
        raise ComposeFileError(str(error).replace(".env", str(env_file), 1)) from None
    return {**{name: item.value for name, item in values.items()}, **environ}


def find_sources(
    files: Sequence[Path] = (),
    *,
    project_directory: Path | None = None,
    env_files: Sequence[Path] = (),
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ComposeSources:
    """The project ``docker compose [-f FILE]… [--project-directory D] [--env-file E]… config`` would read.

    ``environ`` defaults to ``os.environ`` and ``cwd`` to the current directory; relative
    paths are taken from ``cwd``, as a shell hands them to compose, and the files come
    back as named (a discovered parent's file as an absolute path). Raises
    ``ComposeFileError`` when no file is named and discovery finds none.
    """
    environ = dict(os.environ) if environ is None else dict(environ)
    cwd = Path() if cwd is None else cwd  # relative paths stay as the user wrote them
    chosen = [cwd / file for file in files]
    # Where the first .env is read and COMPOSE_FILE's and discovery's paths start.
    working = cwd / project_directory if project_directory is not None else chosen[0].parent if chosen else cwd
    variables = environ
    # Read last first: a value already set wins, and a later --env-file wins over an earlier one.
    for env_file in reversed([cwd / name for name in env_files] or [working / ".env"]):
        variables = read_variables(env_file, required=bool(env_files), environ=variables)
    if not chosen:
        chosen = _from_compose_file(variables, working) or _discover(working)
    project_dir = working if project_directory is not None else chosen[0].parent
    if not env_files and project_dir.resolve() != working.resolve():
        variables = read_variables(project_dir / ".env", required=False, environ=variables)
    return ComposeSources(chosen, project_dir, variables, environ)


def _from_compose_file(variables: Mapping[str, str], working: Path) -> list[Path]:
    value = variables.get("COMPOSE_FILE", "")
    separator = variables.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
    return [working / name for name in value.split(separator) if name]


def _discover(working: Path) -> list[Path]:
    """The default file in ``working`` or its nearest parent that has one, and its override file."""
    for directory in (working, *working.resolve().parents):
        found = _first(directory, DEFAULT_FILES)
        if found is not None:
            override = _first(directory, OVERRIDE_FILES)
            return [found] if override is None else [found, override]
    names = ", ".join(DEFAULT_FILES)
    raise ComposeFileError(f"no compose file in {working.absolute()} or its parents ({names}); name one")


def _first(directory: Path, names: Sequence[str]) -> Path | None:
    return next((directory / name for name in names if (directory / name).is_file()), None)
