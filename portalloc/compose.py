"""The host ports a docker-compose file publishes, and how they square with the ledger.

Reading follows the compose specification: ``ports`` in short syntax
(``"[HOST_IP:][HOST_PORTS:]CONTAINER_PORTS[/PROTOCOL]"``, ranges like ``5000-5002``,
IPv6 hosts bare or in brackets) and long syntax (``published``, ``target``,
``host_ip``, ``protocol``), with ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?error}``, ``${VAR:+other}`` and ``$$`` interpolated from the environment over
the ``.env`` file beside the compose file, as ``docker compose`` does. A mapping
without a host port (compose picks one) and UDP/SCTP mappings (ledger ports are TCP)
publish nothing to check.

YAML is read like compose reads it (YAML 1.2 numbers): ``- 22:22`` is the string
``"22:22"``, not PyYAML's base-60 integer 1342.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from portalloc.errors import ComposeFileError
from portalloc.keys import model_dir_name

#: ``(model, app_num, backend, frontend)``.
Entry = tuple[str, int, int, int]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?\Z", re.DOTALL)
_PORTS = re.compile(r"(?P<low>[0-9]{1,5})(?:-(?P<high>[0-9]{1,5}))?\Z")


class Unresolved(Exception):
    """A variable that is needed but not set (or ``${VAR:?message}``). Not a user error by itself."""


class Published(NamedTuple):
    """One host port a service publishes."""

    service: str
    #: ``ports[2]`` and the mapping as written, for messages.
    where: str
    host_ip: str
    port: int


class Finding(NamedTuple):
    """A published port that collides with the ledger or differs from the app's pair."""

    port: int
    message: str


# --- YAML --------------------------------------------------------------------------------


def _loader() -> type[Any]:
    import yaml

    class ComposeLoader(yaml.SafeLoader):
        """SafeLoader without YAML 1.1's base-60 numbers, which compose (YAML 1.2) does not have."""

    resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    for key, entries in resolvers.items():
        resolvers[key] = [
            (tag, regexp) for tag, regexp in entries if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        ]
    ComposeLoader.yaml_implicit_resolvers = resolvers
    ComposeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(r"^[-+]?(?:0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o?[0-7_]+)$"),
        list("-+0123456789"),
    )
    ComposeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$"),
        list("-+0123456789."),
    )
    return ComposeLoader


def load_compose(path: Path) -> dict[str, Any]:
    """The compose file at ``path`` as a mapping; ``ComposeFileError`` if it is not one."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ComposeFileError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        document = yaml.load(text, Loader=_loader())  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ComposeFileError(f"{path} is not valid YAML: {problem}{where}") from None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise ComposeFileError(f"{path} is not a compose file: it has no 'services' mapping")
    return document


# --- interpolation -----------------------------------------------------------------------


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with compose variables substituted; raises ``Unresolved`` for a needed variable that is unset."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        following = text[i + 1 : i + 2]
        if char != "$":
            out.append(char)
            i += 1
        elif following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], variables))
            i = end + 1
        else:
            match = _NAME.match(text, i + 1)
            if match is None:
                out.append("$")
                i += 1
                continue
            value = variables.get(match.group())
            if value is None:
                raise Unresolved(f"${match.group()} is not set")
            out.append(value)
            i = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{" and text[index - 1] == "$":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise Unresolved(f"unclosed ${{ in {text!r}")


def _expand(inner: str, variables: Mapping[str, str]) -> str:
    match = _BRACED.match(inner)
    if match is None:
        raise Unresolved(f"${{{inner}}} is not a valid variable")
    name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
    value = variables.get(name)
    if op is None:
        if value is None:
            raise Unresolved(f"${{{name}}} is not set")
        return value
    is_set = bool(value) if op.startswith(":") else value is not None
    kind = op[-1]
    if kind == "-":
        return value if is_set and value is not None else interpolate(arg, variables)
    if kind == "+":
        return interpolate(arg, variables) if is_set else ""
    if not is_set or value is None:  # "?"
        raise Unresolved(f"${{{name}}} is not set" + (f" ({arg})" if arg else ""))
    return value


# --- ports -------------------------------------------------------------------------------


def published_ports(document: Mapping[str, Any], variables: Mapping[str, str]) -> tuple[list[Published], list[str]]:
    """Every TCP host port the services publish, and a note for each mapping that cannot be resolved."""
    found: list[Published] = []
    notes: list[str] = []
    for service, spec in document["services"].items():
        if not isinstance(spec, dict):
            raise ComposeFileError(f"services.{service} is not a mapping")
        ports = spec.get("ports") or []
        if not isinstance(ports, list):
            raise ComposeFileError(f"services.{service}.ports is not a list")
        for index, entry in enumerate(ports):
            where = f"services.{service}.ports[{index}]"
            try:
                mapping = _mapping(entry, variables, where)
            except Unresolved as error:
                notes.append(f"{where} ({entry!r}) not checked: {error}")
                continue
            if mapping is None:
                continue
            host_ip, low, high, written = mapping
            found += [Published(str(service), f"{where} {written!r}", host_ip, p) for p in range(low, high + 1)]
    return found, notes


def _mapping(entry: object, variables: Mapping[str, str], where: str) -> tuple[str, int, int, str] | None:
    """``(host_ip, first, last, as written)`` of a TCP mapping with host ports, else ``None``."""
    if isinstance(entry, (bool, int, float)):
        return None  # a container port only: compose picks the host port
    if isinstance(entry, str):
        return _short(interpolate(entry, variables), where)
    if isinstance(entry, dict):
        return _long(entry, variables, where)
    raise ComposeFileError(f"{where} is neither a string nor a mapping: {entry!r}")


def _short(text: str, where: str) -> tuple[str, int, int, str] | None:
    spec, _, protocol = text.strip().partition("/")
    if protocol and protocol.lower() != "tcp":
        return None
    parts = spec.split(":")
    if len(parts) < 2 or not parts[-2]:
        return None  # "80" or "127.0.0.1::80": no host port given
    host_ip = ":".join(parts[:-2]).strip("[]")
    low, high = _port_range(parts[-2], where, text)
    _port_range(parts[-1], where, text)  # the container side must be valid too
    return host_ip, low, high, text


def _long(entry: Mapping[str, Any], variables: Mapping[str, str], where: str) -> tuple[str, int, int, str] | None:
    def field(name: str) -> str:
        value = entry.get(name)
        if value is None:
            return ""
        return interpolate(value, variables) if isinstance(value, str) else str(value)

    if "target" not in entry:
        raise ComposeFileError(f"{where} has no 'target' (the container port)")
    if field("protocol").lower() not in ("", "tcp"):
        return None
    published = field("published")
    if not published:
        return None
    low, high = _port_range(published, where, f"published: {published}")
    return field("host_ip"), low, high, f"published: {published}"


def _port_range(text: str, where: str, written: str) -> tuple[int, int]:
    match = _PORTS.match(text.strip())
    if match is None:
        raise ComposeFileError(f"{where} ({written!r}): {text!r} is not a port or a port range")
    low = int(match.group("low"))
    high = int(match.group("high") or low)
    if not 1 <= low <= high <= 65535:
        raise ComposeFileError(f"{where} ({written!r}): {text!r} is not a valid port range (1-65535, low to high)")
    return low, high


# --- against the ledger ------------------------------------------------------------------


def app_from_path(path: Path, entries: Iterable[Entry]) -> tuple[str, int] | None:
    """The allocation whose app directory (``…/<model>/app<N>/``) holds ``path``, if exactly one does."""
    parents = path.resolve().parents
    names = [(parent.parent.name, parent.name) for parent in parents]
    found = {(model, app_num) for model, app_num, _, _ in entries if (model_dir_name(model), f"app{app_num}") in names}
    return found.pop() if len(found) == 1 else None


def check_ports(published: Iterable[Published], entries: Iterable[Entry], app: tuple[str, int] | None) -> list[Finding]:
    """Published ports that another app holds in the ledger, that are not ``app``'s pair, or that appear twice.

    With ``app`` unknown, every published port the ledger holds is reported (whose it is).
    """
    published = list(published)
    owners: dict[int, str] = {}
    own: dict[str, int] = {}
    for model, app_num, backend, frontend in entries:
        owners.setdefault(backend, f"{model}/{app_num}'s backend")
        owners.setdefault(frontend, f"{model}/{app_num}'s frontend")
        if app == (model, app_num):
            own = {"backend": backend, "frontend": frontend}
    label = f"{app[0]}/{app[1]}" if app else None
    findings: list[Finding] = []
    if app is not None and not own:
        findings.append(Finding(0, f"{label} has no allocation in the ledger (run: portalloc get {app[0]} {app[1]})"))
    seen: dict[int, Published] = {}
    for item in published:
        prefix = f"{item.where} publishes host port {item.port}"
        if item.port in seen:
            findings.append(Finding(item.port, f"{prefix}, already published by {seen[item.port].where}"))
        seen.setdefault(item.port, item)
        if item.port in own.values():
            continue
        owner = owners.get(item.port)
        if owner is not None:
            hint = "" if app is not None else " (pass --model/--app if this file is that app's)"
            findings.append(Finding(item.port, f"{prefix}, which is {owner} port{hint}"))
        elif own:
            findings.append(
                Finding(
                    item.port,
                    f"{prefix}, not {label}'s backend {own['backend']} or frontend {own['frontend']}",
                )
            )
    return findings
