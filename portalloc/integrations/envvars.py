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
FORMATS = ("shell", "dotenv", "json")

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
