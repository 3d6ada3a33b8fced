"""What this machine takes out of a policy: the ports new allocations here skip, and the warning when
the policy's range crosses the OS ephemeral range.

One place for both, used by the write path (``service.allocation``), the policy's
administration (``init`` and ``policy set`` warn) and the counts (``stats``,
``policy``, the metrics), so that no count promises a pair this machine would not
hand out. The ports come from ``portalloc.machine.hostports``; the core takes them as
one set of unusable ports and stays pure.
"""

from __future__ import annotations

import logging

from portalloc.core.models import PortPolicy
from portalloc.machine import hostports

logger = logging.getLogger("portalloc")


def policy_span(policy: PortPolicy) -> tuple[int, int]:
    """The lowest and highest port of the policy's sequence (first backend, last frontend)."""
    return policy.backend_start, policy.pair(policy.pair_count - 1)[1]


def unusable_here(policy: PortPolicy, *, probing: bool, warn: bool = False) -> frozenset[int]:
    """The ports of ``policy`` that new allocations on this machine skip: the OS ephemeral range and the
    ports the OS reserves. None when not ``probing`` (the ledger alone decides then). ``warn``: say so
    when the ephemeral range is among them."""
    if not probing:
        return frozenset()
    host = hostports.host_ports()
    if warn:
        warn_if_ephemeral(policy, host, probing=True)
    return host.unusable(*policy_span(policy))


def warn_if_ephemeral(policy: PortPolicy, host: hostports.HostPorts | None = None, *, probing: bool) -> None:
    """A warning on the ``portalloc`` logger, naming the range, when ``policy`` crosses the OS ephemeral range."""
    host = host or hostports.host_ports()
    overlap = host.ephemeral_overlap(*policy_span(policy))
    if overlap is None or host.ephemeral is None:
        return
    consequence = (
        "ports in it are never handed out"
        if probing
        else "probing is off, so ports in it may be handed out and then taken by outgoing connections"
    )
    logger.warning(
        f"the policy ({policy.describe()}) overlaps the OS ephemeral port range "
        f"{host.ephemeral[0]}-{host.ephemeral[1]} at {overlap[0]}-{overlap[1]}; {consequence}"
    )
