"""The ports this machine keeps portalloc from handing out, gathered in one place for the pure core.

A pair the policy holds is usable here only if neither port lies in the OS ephemeral
range (outgoing connections take those at any moment) or among the ports the OS
reserves (Linux ``ip_local_reserved_ports``). ``HostPorts`` is that knowledge, read
once; ``unusable(low, high)`` is the one input the allocator, the usage counts and the
metrics take, so ports leased to other ledgers on this machine join it by being added
to the same set.
"""

from __future__ import annotations

from typing import NamedTuple

from portalloc.machine import probe


class HostPorts(NamedTuple):
    """What this machine says about its ports: the ephemeral range (``None`` where the OS does not say)
    and the ports the OS reserves."""

    ephemeral: tuple[int, int] | None
    os_reserved: frozenset[int]

    def unusable(self, low: int, high: int) -> frozenset[int]:
        """The ports from ``low`` to ``high`` (both included) that may not be handed out here."""
        ports = {port for port in self.os_reserved if low <= port <= high}
        overlap = self.ephemeral_overlap(low, high)
        if overlap is not None:
            ports.update(range(overlap[0], overlap[1] + 1))
        return frozenset(ports)

    def ephemeral_overlap(self, low: int, high: int) -> tuple[int, int] | None:
        """The part of ``low``..``high`` inside the ephemeral range, or ``None``."""
        if self.ephemeral is None:
            return None
        first, last = max(low, self.ephemeral[0]), min(high, self.ephemeral[1])
        return (first, last) if first <= last else None


def host_ports() -> HostPorts:
    """This machine's ephemeral range and reserved ports, as the OS reports them now."""
    return HostPorts(probe.ephemeral_range(), probe.os_reserved_ports())
