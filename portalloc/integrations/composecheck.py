"""How the host ports a compose project publishes square with the ledger, and with each other.

``check_ports`` reports TCP bindings another app holds, bindings that are not the
app's own pair, and bindings of one project that collide (same port, overlapping
address, profiles that can run together). The project is read by
``portalloc.integrations.compose``.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path

from portalloc.core.keys import AllocationRow, Claim, model_dir_name
from portalloc.integrations.compose import Binding, Finding

#: Pairs of port mappings compared for collisions before the rest are left out (a hostile file).
MAX_COMPARISONS = 500_000


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
