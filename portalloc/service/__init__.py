"""``PortAllocationService``: a thin facade over storage, the core and the machine."""
