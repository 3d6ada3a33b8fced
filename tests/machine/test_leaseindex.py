"""``PortIndex``: its first reading (built in bulk) is the index that putting each lease in turn builds, and
the holders it works out late are the ones it would have kept all along."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portalloc.machine.leaseindex import LeaseKey, PortIndex

_SPAN = (5001, 5100)
_PORTS = st.integers(4990, 5110)  # inside the span and on either side of it
_KEYS = st.tuples(st.integers(1, 3), st.sampled_from(["a", "b", "c"]), st.integers(1, 4))
#: A pair's two ports differ, as in every ledger row.
_PAIRS = st.tuples(_PORTS, _PORTS).filter(lambda pair: pair[0] != pair[1])
_LEASES = st.dictionaries(_KEYS, _PAIRS)
#: A lease recorded or moved (a pair), or ended (``None``).
_CHANGES = st.lists(st.tuples(_KEYS, st.none() | _PAIRS), max_size=30)


def _state(index: PortIndex) -> tuple[object, ...]:
    counts = {ledger_id: count for ledger_id, count in index.counts.items() if count}
    return index.pairs, index.holders, index.leased, counts, index.ledgers()


def _rebuilt(index: PortIndex) -> PortIndex:
    """An index read afresh from ``index``'s pairs, as a store would give them."""
    return PortIndex(_SPAN, 7, [(*key, *pair) for key, pair in index.pairs.items()])


@given(leases=_LEASES)
def test_the_first_reading_is_the_index_each_put_builds(leases: dict[LeaseKey, tuple[int, int]]) -> None:
    rows = [(*key, *pair) for key, pair in leases.items()]
    put_one_by_one = PortIndex(_SPAN, 7, [])
    for key, pair in leases.items():
        put_one_by_one.put(key, pair)
    built = PortIndex(_SPAN, 7, rows)
    assert _state(built) == _state(put_one_by_one)
    assert built.ports(set(), set()) == {port for pair in leases.values() for port in pair if 5001 <= port <= 5100}


@given(leases=_LEASES, changes=_CHANGES, skip=st.sets(_KEYS, max_size=3), gone=st.sets(st.integers(1, 3)))
def test_holders_worked_out_late_agree_with_holders_kept_all_along(
    leases: dict[LeaseKey, tuple[int, int]],
    changes: list[tuple[LeaseKey, tuple[int, int] | None]],
    skip: set[LeaseKey],
    gone: set[int],
) -> None:
    rows = [(*key, *pair) for key, pair in leases.items()]
    late, kept = PortIndex(_SPAN, 7, rows), PortIndex(_SPAN, 7, rows)
    _ = kept.holders  # worked out now, then kept up to date by every put
    for key, pair in changes:
        late.put(key, pair)
        kept.put(key, pair)
        assert _state(late) == _state(kept) == _state(_rebuilt(kept))
    # A port stays taken unless every lease on it is skipped or belongs to a gone ledger.
    expected = {
        port
        for port, owners in _rebuilt(kept).holders.items()
        if not all(owner in skip or owner[0] in gone for owner in owners)
    }
    assert late.ports(skip, gone) == kept.ports(skip, gone) == expected
