"""A port pair as environment variables: their names and their text forms (shell, dotenv, JSON). Pure.

Names are ``BACKEND_PORT`` and ``FRONTEND_PORT`` after an optional prefix
(``--prefix APP_`` → ``APP_BACKEND_PORT``), and ``PORT`` (the backend) for
``portalloc run``, which many dev servers read by convention.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping

from portalloc.errors import InvalidVariableName

BACKEND_VAR = "BACKEND_PORT"
FRONTEND_VAR = "FRONTEND_PORT"
PORT_VAR = "PORT"
COMPOSE_PROJECT_VAR = "COMPOSE_PROJECT_NAME"
FORMATS = ("shell", "dotenv", "json")

# What Docker Compose accepts as a project name, after lowercasing.
_NOT_IN_PROJECT_NAME = re.compile(r"[^a-z0-9_-]+")

# What POSIX shells accept after ``export`` and every dotenv loader accepts before ``=``.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PREFIX = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*)?\Z")


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if ``<prefix>BACKEND_PORT`` is a valid variable name, else raise ``InvalidVariableName``."""
    if not _PREFIX.match(prefix):
        raise InvalidVariableName(
            f"prefix {prefix!r} would not make a valid variable name: use letters, digits and _, "
            "not starting with a digit"
        )
    return prefix


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid environment variable name, else raise ``InvalidVariableName``."""
    if not _NAME.match(name):
        raise InvalidVariableName(
            f"{name!r} is not a valid variable name: use letters, digits and _, not starting with a digit"
        )
    return name


def port_variables(backend: int, frontend: int, prefix: str = "", *, port_var: bool = False) -> dict[str, str]:
    """``{"<prefix>BACKEND_PORT": "5001", "<prefix>FRONTEND_PORT": "8001"}`` (plus ``PORT`` if asked), in that order."""
    check_prefix(prefix)
    variables = {f"{prefix}{BACKEND_VAR}": str(backend), f"{prefix}{FRONTEND_VAR}": str(frontend)}
    if port_var:
        variables[PORT_VAR] = str(backend)
    return variables


def format_variables(variables: Mapping[str, str], form: str) -> str:
    """The variables as text: ``shell`` (``export NAME=VALUE`` lines, safe to ``eval``), ``dotenv`` or ``json``.

    JSON values are strings, as environment values are, so the object can be merged
    straight into an environment.
    """
    for name in variables:
        check_name(name)
    if form == "shell":
        return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())
    if form == "dotenv":
        return "".join(f"{name}={value}\n" for name, value in variables.items())
    if form == "json":
        return json.dumps(dict(variables), indent=2) + "\n"
    raise ValueError(f"unknown format {form!r}; expected one of {', '.join(FORMATS)}")


def compose_project_name(*names: str) -> str:
    """A Docker Compose project name made of ``names`` (a repository's and a worktree's directory names):
    lowercased, joined by ``-``, with what Compose refuses turned into ``-``, starting with a letter or digit.

    Compose names a project after its directory by default; two worktrees of one repository
    run from directories with the same layout, so each gets ``<repository>-<worktree>``.
    """
    cleaned = (_NOT_IN_PROJECT_NAME.sub("-", name.lower()).strip("-_") for name in names)
    return "-".join(part for part in cleaned if part) or "portalloc"
