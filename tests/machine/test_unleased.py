"""``LeaseStore.unleased``: the rows a write must lease, the same from the port index a write has just read as
from the store itself, for rows inside the span, outside it, and straddling it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from portalloc.core.plain import PlainAllocation
from portalloc.machine.leases import open_store

_SPAN = (5001, 5020)
_PORTS = st.integers(4995, 5026)  # inside the span and on either side of it
_PAIRS = st.tuples(_PORTS, _PORTS).filter(lambda pair: pair[0] != pair[1])
_KEYS = st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 4))
#: Live leases of ledger 1 (the one asked about) and ledger 2 (another checkout's).
_LEASES = st.dictionaries(st.tuples(st.integers(1, 2), _KEYS), _PAIRS, max_size=12)
_ROWS = st.dictionaries(_KEYS, _PAIRS, max_size=8)


@settings(max_examples=60, deadline=None)
@given(leases=_LEASES, rows=_ROWS, ended=st.sets(_KEYS, max_size=2))
def test_the_rows_to_lease_are_the_same_from_the_index_as_from_the_store(
    leases: dict[tuple[int, tuple[str, int]], tuple[int, int]],
    rows: dict[tuple[str, int], tuple[int, int]],
    ended: set[tuple[str, int]],
) -> None:
    allocations = [PlainAllocation(*key, *pair) for key, pair in rows.items()]
    with tempfile.TemporaryDirectory() as state:
        store = open_store(Path(state))
        try:
            with store.transaction():
                ids = {n: store.ledger_id(f"ledger-{n}", None, None) for n in (1, 2)}
                for (n, key), pair in leases.items():
                    store.lease(ids[n], key, pair)
                store.release(ids[1], ended, "released")  # an ended lease holds nothing
            held = store.live_pairs(ids[1])
            expected = sorted(row.key for row in allocations if held.get(row.key) != row.ports)
            assert sorted(row.key for row in store.unleased(ids[1], allocations)) == expected  # from the store
            with store.transaction():
                store.leased_ports(_SPAN, {})  # what a write reads first
                assert store._current_index() is not None  # so the index is what is asked
                # From the index, and from the store for the rows with no port in the span.
                assert sorted(row.key for row in store.unleased(ids[1], allocations)) == expected
        finally:
            store.close()
