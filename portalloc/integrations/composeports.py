"""One entry of a compose service's ``ports``, parsed as docker compose v2 parses it.

The short syntax follows docker's ``nat.ParsePortSpec`` (which compose uses):
``[HOST_IP:][HOST_PORTS:]CONTAINER_PORTS[/PROTOCOL]``; the long syntax follows
compose-spec's schema. No host port, or a ``published`` that is not a number, leaves the
choice to the engine: nothing fixed to check (``None``); so does host port ``0``, which
the caller notes. A host range mapped to one container port (``8000-9000:80``) is "any
one of these". What compose rejects is a ``ValueError`` with compose's reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from portalloc.core.limits import whole_number
from portalloc.integrations.composeyaml import quote

_PORTS = re.compile(r"(?P<low>[0-9]+)(?:-(?P<high>[0-9]+))?\Z")
_PROTOCOLS = ("tcp", "udp", "sctp")
#: The keys of a long-syntax port (compose-spec's schema; ``x-`` extensions are allowed too).
_LONG_KEYS = frozenset({"name", "target", "published", "host_ip", "protocol", "app_protocol", "mode"})


class HostPorts(NamedTuple):
    """The host side of one port mapping: ``low``-``high`` on ``host_ip`` ("" = every address)."""

    host_ip: str
    low: int
    high: int
    protocol: str
    #: A host range mapped to one container port: compose takes any one of them.
    any_one: bool


def parse_entry(entry: object) -> HostPorts | None:
    """The host ports of one ``ports`` entry, ``None`` if it has none; ``ValueError`` saying why compose rejects it."""
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


def _short(text: str) -> HostPorts | None:
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
    return HostPorts(host_ip, low, high, protocol, bool(host_size) and not container_size)


def _long(entry: Mapping[Any, Any]) -> HostPorts | None:
    """compose-spec's long syntax (``target``, ``published``, ``host_ip``, ``protocol``, …)."""
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
    return HostPorts(host_ip, low, high, protocol, low != high)


def _port_range(text: str, what: str) -> tuple[int, int]:
    match = _PORTS.match(text)
    if match is None or len(text) > 11:
        raise ValueError(f"invalid {what}: {quote(text)}")
    low = int(match.group("low"))
    high = int(match.group("high") or low)
    if not 0 <= low <= high <= 65535:
        raise ValueError(f"invalid {what}: {quote(text)}")
    return low, high
