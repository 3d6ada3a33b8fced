"""The host ports a compose project publishes, read as docker compose v2 reads it.

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
- Each ``ports`` entry is parsed as compose parses it (``portalloc.integrations.composeports``);
  a host range mapped to one container port is one binding, one finding at most.

How the bindings square with the ledger is ``portalloc.integrations.composecheck``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from portalloc.core.keys import Claim
from portalloc.errors import ComposeFileError
from portalloc.integrations.composefiles import find_sources, read_variables
from portalloc.integrations.composeports import parse_entry
from portalloc.integrations.composeyaml import RESET, OverrideList, OverrideMap, load_documents, merge, quote
from portalloc.integrations.interpolation import Interpolator, Unresolved

#: ``extends``/``include`` chains longer than this are refused (compose refuses cycles).
MAX_CHAIN = 32


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
    """Add what one merged service publishes to ``project`` (and what compose would reject in it)."""
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
        if entry is FAILED or (isinstance(entry, dict) and any(value is FAILED for value in entry.values())):
            continue  # its interpolation is already a finding
        where = f"services.{service}.ports[{index}]"
        try:
            parsed = parse_entry(entry)
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
