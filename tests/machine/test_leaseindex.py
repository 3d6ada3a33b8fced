"""``PortIndex``: its first reading (built in bulk) is the index that putting each lease in turn builds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portalloc.machine.leaseindex import PortIndex

_SPAN = (5001, 5100)
_PORTS = st.integers(4990, 5110)  # inside the span and on either side of it
_LEASES = st.dictionaries(
    st.tuples(st.integers(1, 3), st.sampled_from(["a", "b", "c"]), st.integers(1, 4)), st.tuples(_PORTS, _PORTS)
)


def _state(index: PortIndex) -> tuple[object, ...]:
    by_ledger = {ledger_id: keys for ledger_id, keys in index.by_ledger.items() if keys}
    return index.pairs, index.holders, index.leased, by_ledger


@given(leases=_LEASES)
def test_the_first_reading_is_the_index_each_put_builds(leases: dict[tuple[int, str, int], tuple[int, int]]) -> None:
    rows = [(*key, *pair) for key, pair in leases.items()]
    put_one_by_one = PortIndex(_SPAN, 7, [])
    for key, pair in leases.items():
        put_one_by_one.put(key, pair)
    built = PortIndex(_SPAN, 7, rows)
    assert _state(built) == _state(put_one_by_one)
    assert built.ports(set(), set()) == {port for pair in leases.values() for port in pair if 5001 <= port <= 5100}
