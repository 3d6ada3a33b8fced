"""Ledgers for the command line's read-path tests: the policies a held key is read under."""

from __future__ import annotations

from portalloc.core.models import Pool, PortPolicy

#: A plain policy, and one with reserved ports and a pool (the fast reader must take both), on
#: ports nothing on a test machine holds.
READ_POLICIES = {
    "plain": PortPolicy(backend_start=29001, frontend_start=29501),
    "reserved ports and a pool": PortPolicy(
        backend_start=29001,
        frontend_start=29501,
        reserved=[[29101, 29101], [29601, 29610]],
        pools=[Pool(model="pooled", first=100, last=119)],
    ),
}
