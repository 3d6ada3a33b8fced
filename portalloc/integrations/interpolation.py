"""Compose's variable interpolation (``${VAR:-default}`` and friends), for compose files and ``.env`` alike. Pure.

docker compose expands the same syntax in a compose file and in the ``.env`` it reads
(compose-go's ``template`` package serves both): ``$VAR``, ``${VAR}``,
``${VAR:-default}`` / ``${VAR-default}`` (unset or empty / unset), ``${VAR:+other}`` /
``${VAR+other}``, ``${VAR:?error}`` / ``${VAR?error}`` and ``$$`` for a literal ``$``.
An unset variable reads as empty (compose warns); ``${VAR:?…}`` unset and a ``${`` that
is not a variable make compose refuse the file, here ``Unresolved``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: ``${A:-${B:-…}}`` nested deeper than this is refused, not recursed into.
MAX_NESTING = 32

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?\Z", re.DOTALL)


class Unresolved(Exception):
    """``${VAR:?message}`` of an unset variable, or ``${`` that is not a valid variable. Compose rejects the file."""


class Interpolator:
    """Compose's ``${…}`` rules over one set of variables; remembers the unset names it met."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        """Interpolate from ``variables`` (the environment laid over the ``.env`` file)."""
        self.variables = variables
        self.unset: set[str] = set()

    def __call__(self, text: str, depth: int = 0) -> str:
        """``text`` interpolated; raises ``Unresolved`` where compose would refuse the file."""
        if depth > MAX_NESTING:
            raise Unresolved(f"${{…}} nested more than {MAX_NESTING} deep")
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            following = text[i + 1 : i + 2]
            if char != "$":
                end = text.find("$", i)
                end = len(text) if end < 0 else end
                out.append(text[i:end])
                i = end
            elif following == "$":
                out.append("$")
                i += 2
            elif following == "{":
                end = _closing_brace(text, i + 2)
                out.append(self._expand(text[i + 2 : end], depth))
                i = end + 1
            else:
                match = _NAME.match(text, i + 1)
                if match is None:
                    out.append("$")
                    i += 1
                    continue
                out.append(self._lookup(match.group()))
                i = match.end()
        return "".join(out)

    def _lookup(self, name: str) -> str:
        value = self.variables.get(name)
        if value is None:
            self.unset.add(name)  # compose: "The X variable is not set. Defaulting to a blank string."
            return ""
        return value

    def _expand(self, inner: str, depth: int) -> str:
        match = _BRACED.match(inner)
        if match is None:
            raise Unresolved(f"invalid interpolation format: ${{{inner}}}")
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = self.variables.get(name)
        if op is None:
            return self._lookup(name)
        is_set = bool(value) if op.startswith(":") else value is not None
        kind = op[-1]
        if kind == "-":
            return value if is_set and value is not None else self(arg, depth + 1)
        if kind == "+":
            return self(arg, depth + 1) if is_set else ""
        if not is_set or value is None:  # "?"
            raise Unresolved(f"required variable {name} is missing a value" + (f": {arg}" if arg else ""))
        return value


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{" and text[index - 1] == "$":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise Unresolved("invalid interpolation format: a ${ is not closed")
