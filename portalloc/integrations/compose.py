"""The host ports a compose project publishes, read as docker compose v2 reads it, and how they square with the ledger.

What compose accepts is accepted, and what compose rejects is a finding (never a
silent pass): the test suite holds this module to ``docker compose config`` itself.

- The project's files (``-f``, ``COMPOSE_FILE`` or compose's own discovery with its
  override file) and its variables are found by ``portalloc.integrations.composefiles``.
- The YAML is read by ``portalloc.integrations.composeyaml`` (YAML 1.2, compose's tags, bounded).
- ``${…}`` is interpolated in every value (``portalloc.integrations.interpolation``), from the
  environment over the ``.env`` files compose reads (``portalloc.integrations.envfile``); an unset
  variable reads as empty with a warning, ``${VAR:?…}`` unset or a broken ``${`` is a
  finding.
- ``extends`` (same file or another) and ``include`` bring in their services' ports;
  ``profiles`` decide which services can run together.
- ``ports`` follow compose's parser (docker's ``nat.ParsePortSpec``): short syntax
  ``[HOST_IP:][HOST_PORTS:]CONTAINER_PORTS[/PROTOCOL]`` and long syntax. Host port
  ``0``, no host port, or a ``published`` that is not a number leaves the choice to
  the engine: nothing fixed to check. A host range mapped to one container port
  (``8000-9000:80``) is "any one of these": one binding, one finding at most.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from portalloc.core.keys import AllocationRow, Claim, model_dir_name
from portalloc.core.limits import whole_number
from portalloc.errors import ComposeFileError
from portalloc.integrations.composefiles import find_sources, read_variables
from portalloc.integrations.composeyaml import RESET, OverrideList, OverrideMap, load_documents, merge, quote
from portalloc.integrations.interpolation import Interpolator, Unresolved

#: Pairs of port mappings compared for collisions before the rest are left out (a hostile file).
MAX_COMPARISONS = 500_000
#: ``extends``/``include`` chains longer than this are refused (compose refuses cycles).
MAX_CHAIN = 32
_PORTS = re.compile(r"(?P<low>[0-9]+)(?:-(?P<high>[0-9]+))?\Z")
_PROTOCOLS = ("tcp", "udp", "sctp")
#: The keys of a long-syntax port (compose-spec's schema; ``x-`` extensions are allowed too).
_LONG_KEYS = frozenset({"name", "target", "published", "host_ip", "protocol", "app_protocol", "mode"})


class Binding(NamedTuple):
    """One host-port mapping a service publishes: ``low``-``high`` on ``host_ip`` ("" = every address)."""

    service: str
    #: ``services.web.ports[2] '5001:80'``, for messages.
    where: str
    host_ip: str
    low: int
    high: int
    protocol: str
    #: A host range mapped to one container port: compose takes any one of them.
    any_one: bool
    profiles: frozenset[str]

    def describe(self) -> str:
        """``host port 5001`` or ``host ports 8000-9000``."""
        return f"host port {self.low}" if self.low == self.high else f"host ports {self.low}-{self.high}"


class Finding(NamedTuple):
    """Something compose-check reports: ``kind`` is ``invalid``, ``held``, ``not-own``, ``twice`` or ``unallocated``."""

    kind: str
    port: int | None
    message: str
    holders: tuple[Claim, ...] = ()


@dataclass
class Project:
    """What a compose project (its files, their includes and extends) publishes, and what compose would reject in it."""

    #: The compose files read, in merge order (not those they include or extend).
    files: list[Path] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)
    #: Findings of kind ``invalid``: what makes ``docker compose config`` fail.
    invalid: list[Finding] = field(default_factory=list)
    #: Things compose warns about (unset variables, ports left to the engine).
    notes: list[str] = field(default_factory=list)


class _Failed:
    """A value whose interpolation failed: already a finding, so it is not parsed again."""


FAILED = _Failed()


# --- interpolation -----------------------------------------------------------------------


def _interpolate_tree(value: Any, run: Interpolator, where: str, problems: list[str]) -> Any:
    """Every string value of ``value`` interpolated (keys are not, as in compose); failures go to ``problems``."""
    if isinstance(value, str):
        try:
            return run(value)
        except Unresolved as error:
            problems.append(f"error while interpolating {where}: {error}")
            return FAILED
    if isinstance(value, dict):
        out = type(value)() if isinstance(value, OverrideMap) else {}
        for key, item in value.items():
            out[key] = _interpolate_tree(item, run, f"{where}.{key}" if where else str(key), problems)
        return out
    if isinstance(value, list):
        items = [_interpolate_tree(item, run, f"{where}[{index}]", problems) for index, item in enumerate(value)]
        return OverrideList(items) if isinstance(value, OverrideList) else items
    return value


# --- files: .env, include, extends -------------------------------------------------------


def load_project(
    files: Sequence[Path] = (),
    *,
    project_directory: Path | None = None,
    env_files: Sequence[Path] = (),
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Project:
    """Every binding of the compose project these options name, and what compose rejects in it.

    The files and variables are found as docker compose finds them
    (``composefiles.find_sources``: ``-f`` files, ``COMPOSE_FILE``, or discovery with the
    override file); the files' services are merged in order as compose merges them
    (``composeyaml.merge``: ``ports`` lists are added to). Raises ``ComposeFileError``
    for a file that cannot be read at all, or when there is no file to read.
    """
    sources = find_sources(files, project_directory=project_directory, env_files=env_files, environ=environ, cwd=cwd)
    project = Project(files=sources.files)
    services: dict[str, Any] = {}
    for path in sources.files:
        for name, spec in _services(path, sources.variables, sources.environ, project, chain=()).items():
            services[name] = merge(services[name], spec) if name in services else spec
    for name, spec in services.items():
        if spec is not RESET:
            _service_bindings(str(name), spec, project)
    return project


def _services(
    path: Path, variables: Mapping[str, str], environ: Mapping[str, str], project: Project, chain: tuple[Path, ...]
) -> dict[str, Any]:
    """The services of ``path`` and of the files it includes, ``extends`` resolved, interpolated."""
    resolved = path.resolve()
    if resolved in chain or len(chain) > MAX_CHAIN:
        raise ComposeFileError(f"include cycle or chain longer than {MAX_CHAIN} files at {path}")
    document = _interpolated(path, variables, project)
    services = document.get("services", {})
    if services is RESET:
        services = {}
    if not isinstance(services, dict):
        project.invalid.append(_invalid(f"{path}: services must be a mapping"))
        services = {}
    services = _resolve_extends(path, services, variables, project)
    for included in _includes(path, document.get("include"), project):
        file, env_file = included
        sub_variables = read_variables(env_file or file.parent / ".env", required=env_file is not None, environ=environ)
        for name, spec in _services(file, sub_variables, environ, project, (*chain, resolved)).items():
            if name in services:
                project.invalid.append(_invalid(f"services.{name} conflicts with imported resource from {file}"))
            services.setdefault(name, spec)
    return services


def _interpolated(path: Path, variables: Mapping[str, str], project: Project) -> dict[str, Any]:
    document, duplicates = load_documents(path)
    project.invalid += [_invalid(f"failed to parse {path}: {problem}") for problem in duplicates]
    run = Interpolator(variables)
    problems: list[str] = []
    tree: dict[str, Any] = _interpolate_tree(document, run, "", problems)
    project.invalid += [_invalid(f"{path}: {problem}") for problem in problems]
    project.notes += [
        f"the {name} variable is not set; it is read as empty (as compose does)" for name in sorted(run.unset)
    ]
    return tree


def _includes(path: Path, include: Any, project: Project) -> Iterator[tuple[Path, Path | None]]:
    """``(file, env_file)`` for each file an ``include:`` names (short and long syntax)."""
    if include is None:
        return
    if not isinstance(include, list):
        project.invalid.append(_invalid(f"{path}: include must be a list"))
        return
    for index, item in enumerate(include):
        paths: Any = item
        env_file = None
        if isinstance(item, dict):
            paths = item.get("path")
            env = item.get("env_file")
            env_file = path.parent / (env[0] if isinstance(env, list) and env else env) if env else None
        for file in paths if isinstance(paths, list) else [paths]:
            if not isinstance(file, str) or not file:
                project.invalid.append(_invalid(f"{path}: include[{index}] has no path"))
                continue
            yield path.parent / file, env_file


def _resolve_extends(
    path: Path, services: dict[str, Any], variables: Mapping[str, str], project: Project
) -> dict[str, Any]:
    """``services`` with each ``extends`` merged in, from this file or another."""
    out: dict[str, Any] = {}

    def resolve(name: str, pool: dict[str, Any], file: Path, chain: tuple[tuple[Path, str], ...]) -> Any:
        spec = pool.get(name)
        if not isinstance(spec, dict) or "extends" not in spec:
            return spec
        if (file, name) in chain or len(chain) > MAX_CHAIN:
            project.invalid.append(_invalid(f"services.{name}: extends cycle or chain longer than {MAX_CHAIN}"))
            return {key: value for key, value in spec.items() if key != "extends"}
        extends = spec["extends"]
        base_name, base_file = (extends, None) if isinstance(extends, str) else (None, None)
        if isinstance(extends, dict):
            base_name, base_file = extends.get("service"), extends.get("file")
        if not isinstance(base_name, str) or (base_file is not None and not isinstance(base_file, str)):
            project.invalid.append(_invalid(f"services.{name}.extends must name a service"))
            return {key: value for key, value in spec.items() if key != "extends"}
        base_pool, where = pool, file
        if base_file is not None:
            where = file.parent / base_file
            other = _interpolated(where, variables, project).get("services")
            base_pool = other if isinstance(other, dict) else {}
        if base_name not in base_pool:
            project.invalid.append(_invalid(f"services.{name} extends {quote(base_name)}, which is not in {where}"))
            return {key: value for key, value in spec.items() if key != "extends"}
        base = resolve(base_name, base_pool, where, (*chain, (file, name)))
        own = {key: value for key, value in spec.items() if key != "extends"}
        return merge(base if isinstance(base, dict) else {}, own)

    for name in services:
        out[name] = resolve(name, services, path.resolve(), ())
    return out


# --- ports -------------------------------------------------------------------------------


def _invalid(message: str) -> Finding:
    return Finding("invalid", None, message)


def _service_bindings(service: str, spec: Any, project: Project) -> None:
    if not isinstance(spec, dict):
        project.invalid.append(_invalid(f"services.{service} must be a mapping"))
        return
    spec = {key: value for key, value in spec.items() if value is not RESET}
    if spec.get("image") is None and spec.get("build") is None:
        project.invalid.append(_invalid(f"service {quote(service)} has neither an image nor a build context specified"))
    profiles = spec.get("profiles") or []
    if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
        project.invalid.append(_invalid(f"services.{service}.profiles must be a list of names"))
        profiles = []
    if "ports" not in spec:
        return
    ports = spec["ports"]
    if not isinstance(ports, list):
        project.invalid.append(_invalid(f"services.{service}.ports must be a list (it is {quote(ports)})"))
        return
    for index, entry in enumerate(ports):
        where = f"services.{service}.ports[{index}]"
        try:
            parsed = _entry(entry, where)
        except ValueError as error:
            project.invalid.append(_invalid(f"{where} {quote(entry)}: {error}"))
            continue
        if parsed is None:
            continue
        host_ip, low, high, protocol, any_one = parsed
        if low == 0:
            project.notes.append(f"{where} {quote(entry)}: host port 0 lets the engine choose; nothing to check")
            continue
        project.bindings.append(
            Binding(service, f"{where} {quote(entry)}", host_ip, low, high, protocol, any_one, frozenset(profiles))
        )


def _entry(entry: object, where: str) -> tuple[str, int, int, str, bool] | None:
    """``(host_ip, first, last, protocol, any_one)`` of a mapping with host ports, ``None`` if it has none."""
    if entry is FAILED or (isinstance(entry, dict) and any(value is FAILED for value in entry.values())):
        return None  # its interpolation is already a finding
    if isinstance(entry, bool) or entry is None:
        raise ValueError("must be a number or a string")
    if isinstance(entry, int):
        if not 0 < entry <= 65535:
            raise ValueError("is not a valid container port")
        return None  # a container port only: the engine picks the host port
    if isinstance(entry, float):
        raise ValueError("invalid type float for port")
    if isinstance(entry, str):
        return _short(entry)
    if isinstance(entry, dict):
        return _long(entry)
    raise ValueError("must be a number, a string or a mapping")


def _short(text: str) -> tuple[str, int, int, str, bool] | None:
    """docker's ``nat.ParsePortSpec``, which compose uses for the short syntax."""
    # docker's SplitProtoPort: the part after the first "/" is the protocol, empty means tcp.
    spec, _, protocol = text.partition("/")
    protocol = protocol.split("/")[0].lower() or "tcp"
    if not spec:
        raise ValueError(f"invalid proto: {quote(protocol if text else '')}")
    if protocol not in _PROTOCOLS:
        raise ValueError(f"invalid proto: {quote(protocol)}")
    parts = spec.split(":")
    container = parts[-1]
    host = parts[-2] if len(parts) >= 2 else ""
    host_ip = ":".join(parts[:-2])
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise ValueError(f"invalid IP address: {quote(host_ip)}") from None
    target = _port_range(container, "containerPort")
    if target[0] == 0:
        raise ValueError("is missing a target port")
    if not host:
        return None  # "80" or "127.0.0.1::80": the engine picks the host port
    low, high = _port_range(host, "hostPort")
    container_size, host_size = target[1] - target[0], high - low
    if container_size and container_size != host_size:
        raise ValueError(f"invalid ranges specified for container and host ports: {container} and {host}")
    return host_ip, low, high, protocol, bool(host_size) and not container_size


def _long(entry: Mapping[Any, Any]) -> tuple[str, int, int, str, bool] | None:
    unknown = [key for key in entry if key not in _LONG_KEYS and not str(key).startswith("x-")]
    if unknown:
        raise ValueError(f"additional property {quote(unknown[0])} is not allowed")
    target = entry.get("target")
    if isinstance(target, str):
        target = whole_number(target)  # "80" as compose takes it; anything else is no target
    if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target <= 65535:
        raise ValueError("is missing a target port")
    protocol = str(entry.get("protocol") or "tcp").lower()
    host_ip = str(entry.get("host_ip") or "")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise ValueError(f"invalid IP address: {quote(host_ip)}") from None
    published = entry.get("published")
    if published is None or published == "":
        return None
    if isinstance(published, bool) or not isinstance(published, (int, str)):
        raise ValueError("published must be a number or a string")
    if not _PORTS.match(str(published)):
        return None  # compose passes any string through ("example.com:8080"): nothing fixed to check
    # compose config lets "published: 70000" through, but no engine can bind it: a finding.
    low, high = _port_range(str(published), "published")
    return host_ip, low, high, protocol, low != high


def _port_range(text: str, what: str) -> tuple[int, int]:
    match = _PORTS.match(text)
    if match is None or len(text) > 11:
        raise ValueError(f"invalid {what}: {quote(text)}")
    low = int(match.group("low"))
    high = int(match.group("high") or low)
    if not 0 <= low <= high <= 65535:
        raise ValueError(f"invalid {what}: {quote(text)}")
    return low, high


# --- against the ledger ------------------------------------------------------------------


def app_from_path(path: Path, entries: Iterable[AllocationRow]) -> tuple[str, int] | None:
    """The allocation whose app directory (``…/<model>/app<N>/``) holds ``path``, if exactly one does."""
    parents = path.resolve().parents
    names = [(parent.parent.name, parent.name) for parent in parents]
    found = {(model, app_num) for model, app_num, _, _ in entries if (model_dir_name(model), f"app{app_num}") in names}
    return found.pop() if len(found) == 1 else None


def _family(host_ip: str) -> int:
    return 0 if not host_ip else ipaddress.ip_address(host_ip).version


def _addresses_overlap(a: str, b: str) -> bool:
    """Whether two bindings' host IPs share a socket address space ("" is every address of both families)."""
    if a == b or not a or not b:
        return True
    if _family(a) != _family(b):
        return False  # IPv4 and IPv6 are separate port spaces
    return ipaddress.ip_address(a).is_unspecified or ipaddress.ip_address(b).is_unspecified


def _can_run_together(a: Binding, b: Binding) -> bool:
    """Services in profiles that share none never start together (a service without profiles always starts)."""
    return not (a.profiles and b.profiles and not a.profiles & b.profiles)


def check_ports(
    bindings: Iterable[Binding], entries: Iterable[AllocationRow], app: tuple[str, int] | None
) -> list[Finding]:
    """TCP bindings that another app holds in the ledger, that are not ``app``'s pair, or that collide in the file.

    With ``app`` unknown, every published port the ledger holds is reported (whose it is).
    A range is one finding, however many ports it spans.
    """
    bindings = list(bindings)
    holders: dict[int, list[Claim]] = {}
    own: dict[str, int] = {}
    for model, app_num, backend, frontend in entries:
        holders.setdefault(backend, []).append(Claim(model, app_num, "backend"))
        holders.setdefault(frontend, []).append(Claim(model, app_num, "frontend"))
        if app == (model, app_num):
            own = {"backend": backend, "frontend": frontend}
    held = sorted(holders)
    label = f"{app[0]}/{app[1]}" if app else None
    findings: list[Finding] = []
    if app is not None and not own:
        findings.append(
            Finding(
                "unallocated", None, f"{label} has no allocation in the ledger (run: portalloc get {app[0]} {app[1]})"
            )
        )
    for item in bindings:
        if item.protocol != "tcp":
            continue  # ledger ports are TCP; a UDP socket on the same number does not collide
        prefix = f"{item.where} publishes {item.describe()}"
        inside = held[bisect_left(held, item.low) : bisect_left(held, item.high + 1)]
        others = [port for port in inside if port not in own.values()]
        if others:
            port = others[0]
            names = ", ".join(f"{h.model}/{h.app_num}'s {h.role}" for h in holders[port])
            more = (
                f" (and {len(others) - 1} more ledger port{'s' if len(others) > 2 else ''})" if len(others) > 1 else ""
            )
            hint = "" if app is not None else " (pass --model/--app if this file is that app's)"
            verb = "which may take" if item.any_one else "which includes" if item.low != item.high else "which is"
            what = f"port {port}, {names}" if item.low != item.high else f"{names} port"
            findings.append(Finding("held", port, f"{prefix}, {verb} {what}{more}{hint}", tuple(holders[port])))
        elif own and not (item.low == item.high and item.low in own.values()):
            findings.append(
                Finding(
                    "not-own",
                    item.low,
                    f"{prefix}, not {label}'s backend {own['backend']} or frontend {own['frontend']}",
                )
            )
    return findings + _collisions(bindings)


def _collisions(bindings: list[Binding]) -> list[Finding]:
    """Two bindings of fixed ports that overlap on one address and protocol and can run together.

    A sweep in port order. Of the bindings still open on one (protocol, address,
    profiles), only the one reaching highest matters: it overlaps whatever any of them
    would. A file crafted to make many such groups meet a comparison budget instead
    of quadratic time.
    """
    fixed = sorted((b for b in bindings if not b.any_one), key=lambda b: (b.protocol, b.low, b.high))
    findings: list[Finding] = []
    reach: dict[tuple[str, str, frozenset[str]], Binding] = {}
    budget = MAX_COMPARISONS
    for item in fixed:
        budget -= len(reach) + 1  # the work below is two passes over reach
        if budget < 0:
            findings.append(
                Finding("twice", None, f"more than {MAX_COMPARISONS:,} overlapping mappings; the rest not compared")
            )
            break
        for key, earlier in list(reach.items()):
            if earlier.protocol != item.protocol or earlier.high < item.low:
                del reach[key]  # closed: every later binding starts above it
        for earlier in reach.values():
            if _addresses_overlap(earlier.host_ip, item.host_ip) and _can_run_together(earlier, item):
                port = max(earlier.low, item.low)
                message = f"{item.where} publishes host port {port}, already published by {earlier.where}"
                findings.append(Finding("twice", port, message))
                break
        key = (item.protocol, item.host_ip, item.profiles)
        if key not in reach or reach[key].high < item.high:
            reach[key] = item
    return findings
