"""What this machine takes out of a policy: the ports new allocations here skip, and the warning when
the policy's range crosses the OS ephemeral range.

One place for both, used by the write path (``service.allocation``), the policy's
administration (``init`` and ``policy set`` warn) and the counts (``stats``,
``policy``, the metrics), so that no count promises a pair this machine would not
hand out: the OS ephemeral range and reserved ports (``portalloc.machine.hostports``)
and the ports other ledgers and worktrees lease here (``portalloc.machine.leases``).
The core takes them as one set of unusable ports and stays pure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from portalloc.core.policyrules import policy_span
from portalloc.machine import hostports

if TYPE_CHECKING:
    from portalloc.core.shapes import PolicyShape
    from portalloc.service.host import HostLeases

logger = logging.getLogger("portalloc")


def unusable_here(
    policy: PolicyShape,
    *,
    probing: bool,
    warn: bool = False,
    host: HostLeases | None = None,
    held: Iterable[tuple[str, int]] = (),
) -> frozenset[int]:
    """The ports of ``policy`` that new allocations on this machine skip.

    When ``probing``: the OS ephemeral range and the ports the OS reserves (``warn``:
    say so when the ephemeral range is among them). With ``host`` (leases on, probing or
    not, as the write path): the ports that live host leases of keys other than ``held``
    (the ledger's own keys) hold here, in every ledger of this machine whose work tree
    still exists (``leased_elsewhere``).
    """
    ports: frozenset[int] = frozenset()
    if probing:
        found = hostports.host_ports()
        if warn:
            warn_if_ephemeral(policy, found, probing=True)
        ports = found.unusable(*policy_span(policy))
    if host is not None:
        ports |= leased_elsewhere(host, policy, held)
    return ports


def leased_elsewhere(host: HostLeases, policy: PolicyShape, held: Iterable[tuple[str, int]]) -> frozenset[int]:
    """The ports of ``policy``'s span that live host leases of keys other than ``held`` hold on this machine.

    A count never fails because of the store: one that cannot be opened or read is a
    warning saying the figures do not exclude leased ports, and none are excluded.
    """
    from portalloc.machine.leases import STORE_ERRORS  # here: sqlite3 only once a store is in use

    try:
        store = host.existing_store()
        if store is None:
            return frozenset()  # nothing is leased on this machine yet
        ledger_id = store.known_ledger_id(host.identity().key)
        excluding = {} if ledger_id is None else {ledger_id: list(held)}
        return frozenset(store.leased_ports(policy_span(policy), excluding))
    except STORE_ERRORS as error:
        logger.warning(f"the pairs counted as usable on this machine include ports other ledgers may lease: {error}")
        return frozenset()


def warn_if_ephemeral(policy: PolicyShape, host: hostports.HostPorts | None = None, *, probing: bool) -> None:
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
