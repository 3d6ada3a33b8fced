"""The plain read of a ledger (``storage.plainread``) is the models' read, and the write path gives the same answers
on both: the same pairs, the same bytes, the same notes and the same errors (generated ledgers and policies)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portalloc.core.allocator import assign_many
from portalloc.core.keys import check_model_name
from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy
from portalloc.core.pairs import merge_ranges
from portalloc.core.plain import PlainLedger
from portalloc.core.shapes import LedgerShape, Row
from portalloc.errors import LedgerCorrupt, PortallocError
from portalloc.storage import codec
from portalloc.storage.codec import LineCache, dump_ledger, parse_ledger
from portalloc.storage.plainread import new_plain_ledger, parse_plain
from tests.storage.test_codec import _documents

#: Models a ledger and a batch draw from: a look-alike of ``m_a`` (Cyrillic а), and ``café`` as NFD.
_MODELS = ["m_a", "m_b", "pooled", "m_\u0430", "cafe\u0301"]


@st.composite
def _policies(draw: st.DrawFn) -> PortPolicy:
    """Small policies (4-12 pairs, so they fill up), near browsers' bad ports, with reserved ports and pools."""
    step = draw(st.integers(1, 3))
    count = draw(st.integers(4, 12))
    backend_start = draw(st.sampled_from([5055, 6660, 9000, 10070]))
    frontend_start = backend_start + step * count
    max_port = frontend_start + step * (count - 1)
    span = range(backend_start, max_port + 1)
    reserved = merge_ranges([[port, port] for port in draw(st.lists(st.sampled_from(span), max_size=4))])
    pools, first = [], draw(st.integers(0, 2))
    for model in draw(st.lists(st.sampled_from(_MODELS[:3]), unique=True, max_size=2)):
        last = first + draw(st.integers(0, 2))
        if last >= count:
            break
        pools.append(Pool(model=model, first=first, last=last, overflow=draw(st.sampled_from(["shared", "fail"]))))
        first = last + draw(st.integers(1, 2))
    return PortPolicy(
        backend_start=backend_start,
        frontend_start=frontend_start,
        step=step,
        max_port=max_port,
        skip_bad_ports=draw(st.booleans()),
        probe=draw(st.booleans()),
        reserved=reserved,
        pools=pools,
    )


@st.composite
def _cases(
    draw: st.DrawFn,
) -> tuple[bytes, list[tuple[str, int]], set[int], dict[tuple[str, int], tuple[int, int]], bool]:
    """A ledger's bytes (rows on and off the sequence, now and then a port held twice) and one batch to allocate."""
    policy = draw(_policies())
    ports = st.integers(policy.backend_start - 4, policy.max_port + 4)
    keys = st.tuples(st.sampled_from(_MODELS), st.integers(1, 4))
    rows: dict[tuple[str, int], Allocation] = {}
    for key in draw(st.lists(keys, max_size=6)):
        pair = policy.pair(draw(st.integers(0, policy.pair_count - 1)))
        if draw(st.integers(0, 5)) == 0:
            pair = (draw(ports), draw(ports))
        if pair[0] != pair[1]:
            rows[key] = Allocation(model=key[0], app_num=key[1], backend=pair[0], frontend=pair[1])
    data = dump_ledger(Ledger(policy=policy).with_allocations(rows.values()))
    preferred = draw(st.dictionaries(keys, st.tuples(ports, ports), max_size=2))
    taken = draw(st.sets(ports, max_size=6))  # held by the probe or leased to other ledgers' keys
    return data, draw(st.lists(keys, min_size=1, max_size=5)), taken, preferred, draw(st.booleans())


def _outcome(
    ledger: LedgerShape,
    keys: list[tuple[str, int]],
    taken: set[int],
    preferred: dict[tuple[str, int], tuple[int, int]],
    allow_confusable: bool,
) -> object:
    """What a batch gives: the bytes written and each key's pair, whether new and its note; or the error."""
    try:
        new, assignments = assign_many(ledger, keys, taken, preferred, allow_confusable=allow_confusable)
    except PortallocError as error:
        return type(error), str(error)
    pairs = [(a.allocation.key, a.allocation.ports, a.created, a.note) for a in assignments]
    return dump_ledger(new), pairs, sorted(new.used_ports), [row.key for row in new.in_key_order()]


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_the_plain_and_the_model_ledger_allocate_alike(
    case: tuple[bytes, list[tuple[str, int]], set[int], dict[tuple[str, int], tuple[int, int]], bool],
) -> None:
    data, keys, taken, preferred, allow_confusable = case
    plain, model = parse_plain(data, "l.json"), parse_ledger(data, "l.json")
    assert isinstance(plain, PlainLedger)  # every file portalloc writes takes the plain read
    assert (plain.policy.describe(), plain.policy.reserved_ports()) == (
        model.policy.describe(),
        model.policy.reserved_ports(),
    )
    assert _outcome(plain, keys, taken, preferred, allow_confusable) == _outcome(
        model, keys, taken, preferred, allow_confusable
    )


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_the_plain_read_answers_where_the_models_do_and_the_same(data: bytes) -> None:
    try:
        expected: object = dump_ledger(parse_ledger(data, "l.json"))
    except LedgerCorrupt as error:
        expected = str(error)
    try:
        found: object = dump_ledger(parse_plain(data, "l.json"))
    except LedgerCorrupt as error:
        found = str(error)
    assert found == expected


def test_a_missing_file_reads_as_the_models_new_ledger() -> None:
    assert dump_ledger(new_plain_ledger()) == dump_ledger(Ledger())


def test_a_plain_ledger_is_immutable(tmp_path: Path) -> None:
    ledger = parse_plain(dump_ledger(Ledger()), tmp_path / "l.json")
    with pytest.raises(AttributeError, match="immutable"):
        ledger.version = 2  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        ledger.policy.step = 3  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(_documents(), st.sampled_from(["m_a", "cafe\u0301", "z"]))
def test_the_lines_a_plain_read_gives_the_line_cache_are_the_canonical_ones(data: bytes, model: str) -> None:
    """A read of a canonical file seeds its ``LineCache`` with the lines it read: what the cache then writes is
    ``dump_ledger``'s, with a row added too, whatever the file (models not in NFC, other layouts)."""
    cache = LineCache()
    try:
        ledger = parse_plain(data, "l.json", cache)
    except LedgerCorrupt:
        return
    assert cache.dump(ledger) == dump_ledger(ledger)
    new_row = ledger.new_row(check_model_name(model), 999, 65000, 65001)
    if ledger.find(*new_row.key) is None:
        grown = ledger.with_added([new_row])
        assert cache.dump(grown) == dump_ledger(grown)


def test_a_write_after_a_plain_read_of_a_canonical_file_formats_only_the_row_it_adds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger, _ = assign_many(Ledger(), [(f"m{i % 7}", i + 1) for i in range(200)])
    cache = LineCache()
    read = parse_plain(dump_ledger(ledger), "l.json", cache)
    formatted: list[str] = []
    real = codec.allocation_line

    def counted(row: Row) -> str:
        formatted.append(row.model)
        return real(row)

    monkeypatch.setattr(codec, "allocation_line", counted)
    grown, _ = assign_many(read, [("new", 1)])
    written = cache.dump(grown)
    assert formatted == ["new"]
    assert written == dump_ledger(grown)
