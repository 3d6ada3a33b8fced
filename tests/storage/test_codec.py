"""The ledger's layout (``portalloc.storage.codec``): canonical bytes, the strict parse, the fast reader.

The fast reader must answer only where the full parser answers the same; that is
pinned over generated near-ledgers, canonical and not. The codec's field names must be
the models' fields, so a field added to a model without the codec fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portalloc.core.allocator import assign_many
from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy
from portalloc.errors import LedgerCorrupt
from portalloc.service.facade import PortAllocationService
from portalloc.storage import codec
from portalloc.storage.codec import (
    canonical_document,
    dump_ledger,
    parse_ledger,
    parsed_document,
    policy_fields,
    read_checked,
    validate_ledger,
)
from portalloc.storage.lookup import find_pair
from portalloc.storage.strictjson import parse_json


def three_apps() -> Ledger:
    ledger, _ = assign_many(Ledger(), [("model_b", 1), ("model_a", 2), ("model_a", 1)])
    return ledger


# --- one source: the codec's names are the models' ------------------------------------------


def test_the_codec_field_names_are_the_models_fields() -> None:

    assert tuple(Ledger.model_fields) == codec.LEDGER_FIELDS
    assert tuple(Allocation.model_fields) == codec.ROW_FIELDS
    # Every policy field is known to the codec, with the model's default, in the model's order.
    assert (*codec.POLICY_DEFAULTS, *codec.POLICY_LISTS) == tuple(PortPolicy.model_fields)
    assert PortPolicy().model_dump() == {**codec.POLICY_DEFAULTS, **{name: [] for name in codec.POLICY_LISTS}}
    choices = set(codec.POLICY_CHOICES)
    assert set(codec.POLICY_PORTS) | set(codec.POLICY_FLAGS) | choices | {"step"} == set(codec.POLICY_DEFAULTS)
    for name, allowed in codec.POLICY_CHOICES.items():
        assert allowed == get_args(PortPolicy.model_fields[name].annotation)
    assert tuple(Pool.model_fields) == codec.POOL_FIELDS
    assert Pool(model="m", first=0, last=0).model_dump() == {"model": "m", "first": 0, "last": 0, **codec.POOL_DEFAULTS}
    assert get_args(Pool.model_fields["overflow"].annotation) == codec.POOL_OVERFLOWS


def test_a_policy_field_the_fast_reader_does_not_check_defers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field another change adds to the policy (and the codec's defaults) is checked by the models until the
    fast reader learns it: a file that spells it takes the full path, one that leaves it out the fast one."""
    plain = dump_ledger(three_apps()).decode()
    monkeypatch.setattr(codec, "POLICY_DEFAULTS", {**codec.POLICY_DEFAULTS, "future": "x"})
    assert read_checked(plain.replace('"skip_bad_ports": true', '"skip_bad_ports": true, "future": 7')) is None
    assert read_checked(plain) is not None


# --- worktrees: separate, the one policy that needs a newer ledger version ---------------------


def test_a_shared_ledger_keeps_its_bytes_and_a_separate_one_says_version_2() -> None:
    shared = three_apps()
    assert b'"version": 1,' in dump_ledger(shared) and b"worktrees" not in dump_ledger(shared)
    separate = shared.model_copy(update={"policy": PortPolicy(worktrees="separate")})
    data = dump_ledger(separate)
    assert data.startswith(b'{\n  "version": 2,\n')
    assert b'"probe": true, "worktrees": "separate"}' not in data  # probe keeps its default, so it is not written
    assert b'"skip_bad_ports": true, "worktrees": "separate"},' in data
    again = parse_ledger(data, "x")
    assert again.policy.separate_worktrees and again.allocations == shared.allocations
    assert dump_ledger(again) == data
    # Back to shared: back to the old bytes, readable by a portalloc that predates version 2.
    assert dump_ledger(again.model_copy(update={"policy": PortPolicy()})) == dump_ledger(shared)


def test_the_fast_lookup_leaves_a_separate_ledger_to_the_service(tmp_path: Path) -> None:
    separate = three_apps().model_copy(update={"policy": PortPolicy(worktrees="separate")})
    path = tmp_path / "ledger.json"
    path.write_bytes(dump_ledger(separate))
    assert read_checked(path.read_text()) is not None  # readable (completion lists its names) ...
    assert find_pair(path, "model_a", 1) is None  # ... but a linked worktree's pair is not the ledger's
    path.write_bytes(dump_ledger(three_apps()))
    assert find_pair(path, "model_a", 1) == (5005, 8005, True)


def test_a_newer_version_and_a_version_too_old_for_its_policy_are_refused_clearly(tmp_path: Path) -> None:
    data = dump_ledger(three_apps()).replace(b'"version": 1', b'"version": 3')
    with pytest.raises(LedgerCorrupt, match=r"version 3 was written by a newer portalloc .*versions 1 to 2.*upgrade"):
        parse_ledger(data, "ledger.json")
    separate = dump_ledger(three_apps().model_copy(update={"policy": PortPolicy(worktrees="separate")}))
    with pytest.raises(LedgerCorrupt, match="worktrees: separate needs ledger version 2, and this one says 1"):
        parse_ledger(separate.replace(b'"version": 2', b'"version": 1'), "ledger.json")
    with pytest.raises(LedgerCorrupt, match="worktrees"):
        parse_ledger(separate.replace(b'"separate"', b'"apart"'), "ledger.json")


def test_a_policy_field_the_codec_does_not_know_defers_the_fast_reader() -> None:
    text = dump_ledger(three_apps()).decode().replace('"skip_bad_ports": true', '"skip_bad_ports": true, "new": 1')
    assert read_checked(text) is None
    assert read_checked(dump_ledger(three_apps()).decode()) is not None  # the same file without it is read


# --- canonical bytes ----------------------------------------------------------------------------


def test_canonical_bytes_are_stable_sorted_one_allocation_per_line() -> None:
    data = dump_ledger(three_apps())
    assert data == dump_ledger(parse_ledger(data, "x"))
    assert data.decode().splitlines() == [
        "{",
        '  "version": 1,',
        '  "policy": {"backend_start": 5001, "frontend_start": 8001, "step": 2, "max_port": 65535, '
        '"skip_bad_ports": true},',
        '  "allocations": [',
        '    {"model": "model_a", "app_num": 1, "backend": 5005, "frontend": 8005},',
        '    {"model": "model_a", "app_num": 2, "backend": 5003, "frontend": 8003},',
        '    {"model": "model_b", "app_num": 1, "backend": 5001, "frontend": 8001}',
        "  ]",
        "}",
    ]
    assert data.endswith(b"}\n")


def test_empty_ledger_bytes_and_unicode_models_kept_readable() -> None:
    assert dump_ledger(Ledger()).decode().endswith('"allocations": []\n}\n')
    ledger = Ledger().with_allocations([Allocation(model="modèle", app_num=1, backend=5001, frontend=8001)])
    assert '"modèle"' in dump_ledger(ledger).decode("utf-8")


def test_insertion_order_does_not_change_the_bytes() -> None:
    rows = list(three_apps().allocations)
    assert dump_ledger(Ledger().with_allocations(rows)) == dump_ledger(Ledger().with_allocations(rows[::-1]))


def test_unsorted_ledger_is_written_sorted() -> None:
    rows = [Allocation(model=m, app_num=1, backend=5001 + 2 * i, frontend=8001 + 2 * i) for i, m in enumerate("cab")]
    unsorted = Ledger(allocations=rows)
    assert dump_ledger(unsorted) == dump_ledger(Ledger().with_allocations(rows))
    assert [a.model for a in parse_ledger(dump_ledger(unsorted), "x").allocations] == ["a", "b", "c"]


def test_a_ledger_with_conflicts_still_loads() -> None:
    text = (
        '{"version": 1, "allocations": ['
        '{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001},'
        '{"model": "b", "app_num": 1, "backend": 5001, "frontend": 8003}]}'
    )
    assert len(parse_ledger(text.encode(), "x").allocations) == 2


def pool_of_rows(count: int) -> list[Allocation]:
    ledger, _ = assign_many(Ledger(), [(f"m{i % 3}", i + 1) for i in range(count)])
    return ledger.allocations


@given(
    steps=st.lists(
        st.tuples(st.lists(st.integers(0, 19), max_size=20), st.lists(st.integers(0, 19), max_size=3)), max_size=8
    )
)
def test_the_line_cache_writes_the_canonical_bytes_of_every_ledger_it_is_given(
    steps: list[tuple[list[int], list[int]]],
) -> None:
    """Each step keeps some of 20 rows (the same objects) and makes others anew (equal, or the same key on
    another pair): what the cache writes is ``dump_ledger``'s, whatever it saw before."""
    rows = pool_of_rows(20)
    cache = codec.LineCache()
    previous = Ledger()
    for kept, remade in steps:
        chosen = {i: rows[i] for i in kept}
        for i in remade:
            old = rows[i]
            shift = 2 * 20 * (i % 2)  # half the remade rows move to a pair no other row holds
            chosen[i] = Allocation(
                model=old.model, app_num=old.app_num, backend=old.backend + shift, frontend=old.frontend + shift
            )
        ledger = Ledger().with_allocations(chosen.values())
        assert cache.dump(ledger) == dump_ledger(ledger)
        # The writer's re-read asks for the lines of the ledger before (``parse_known_rows``): still right.
        assert cache.lines_of(previous.in_key_order()) == list(map(codec.allocation_line, previous.in_key_order()))
        previous = ledger


# --- the equivalence the fast path relies on, over generated near-ledgers -------------------

_MODELS = ["a", "b", "caf\u00e9", "cafe\u0301", "a\u200b", "", " a", "b\udcff", "x" * 201, "../x"]
_APP_NUMS: list[object] = [1, 2, 0, -1, 1_000_001, True, 1.0, "1", None]
_PORTS: list[object] = [5001, 8001, 5003, 8003, 1023, 65536, "5001", True, 5001.0, None]
_QUERIES = [("a", 1), ("b", 2), ("caf\u00e9", 1)]

Pairs = list[tuple[str, object]]


class _Obj:
    """A JSON object as a list of name/value pairs, so that a name can appear twice."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = pairs


def _dump(value: object) -> str:
    if isinstance(value, _Obj):
        return "{" + ", ".join(f"{json.dumps(name)}: {_dump(item)}" for name, item in value.pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_dump, value)) + "]"
    return json.dumps(value)  # ensure_ascii: a lone surrogate becomes a "\udcff" escape, as a hostile file has it


def _mostly(good: list[object], bad: list[object], odds: int = 20) -> st.SearchStrategy[object]:
    """One of ``bad`` once in ``odds`` draws, else one of ``good``: most documents stay valid."""
    return st.integers(1, odds).flatmap(lambda n: st.sampled_from(bad if n == 1 else good))


def _mutated(pairs: Pairs, extra: st.SearchStrategy[tuple[str, object]], odds: int = 20) -> st.SearchStrategy[Pairs]:
    """``pairs``, or (once in ``odds``) with one of them dropped or repeated, or an extra one added."""
    drop = st.integers(0, len(pairs) - 1).map(lambda i: pairs[:i] + pairs[i + 1 :])
    repeat = st.tuples(st.integers(0, len(pairs) - 1), extra).map(lambda t: [*pairs, (pairs[t[0]][0], t[1][1])])
    add = extra.map(lambda pair: [*pairs, pair])
    return st.integers(1, odds).flatmap(lambda n: st.just(pairs) if n > 1 else st.one_of(drop, repeat, add))


_any_scalar = st.sampled_from([*_PORTS, *_APP_NUMS, *_MODELS, False])


@st.composite
def _rows(draw: st.DrawFn) -> _Obj:
    pairs: Pairs = [
        ("model", draw(_mostly(_MODELS[:4], _MODELS[4:], odds=60))),
        ("app_num", draw(_mostly([1, 2], _APP_NUMS[2:], odds=60))),
        ("backend", draw(_mostly([5001, 5003, 5005], _PORTS, odds=60))),
        ("frontend", draw(_mostly([8001, 8003, 8005], _PORTS, odds=60))),
    ]
    extra = st.tuples(st.sampled_from(["model", "app_num", "backend", "frontend", "note"]), _any_scalar)
    return _Obj(draw(_mutated(pairs, extra, odds=60)))


@st.composite
def _pools(draw: st.DrawFn) -> list[object]:
    """Per-model pools, mostly valid (sorted, apart, one per model), now and then not."""
    pools: list[object] = []
    first = draw(st.integers(0, 3))
    for model in draw(st.lists(st.sampled_from(_MODELS[:4]), max_size=3)):
        last = first + draw(st.integers(0, 3))
        pairs: Pairs = [
            ("model", draw(_mostly([model], _MODELS[4:], odds=10))),
            ("first", draw(_mostly([first], [-1, True, 1.0, last + 1], odds=10))),
            ("last", draw(_mostly([last], [first - 1, 100_000, "1"], odds=10))),
        ]
        if draw(st.booleans()):
            pairs.append(("overflow", draw(_mostly(["shared", "fail"], ["", "Fail", 1, None], odds=3))))
        extra = st.tuples(st.sampled_from(["model", "first", "last", "overflow", "size"]), _any_scalar)
        pools.append(_Obj(draw(_mutated(pairs, extra, odds=20))))
        first = last + draw(_mostly([1, 2], [0, -1], odds=4))  # type: ignore[operator]
    return pools


_RESERVED: list[object] = [[[5005, 5005]], [[5001, 5001], [8003, 8010]], [[6379, 6379], [9229, 9240], [20000, 20000]]]
_BAD_RESERVED: list[object] = [
    [[5005]],
    [[5010, 5005]],
    [[5001, 5002], [5003, 5003]],
    [[8003, 8010], [5001, 5001]],
    [[1023, 1024]],
    [[5001, True]],
    [[5001, 5001.0]],
    [5001],
    "5001",
    None,
]


@st.composite
def _policies(draw: st.DrawFn) -> _Obj:
    values: dict[str, tuple[list[object], list[object]]] = {
        "backend_start": ([5001, 6001], [8001, 1023, True, "5001"]),
        "frontend_start": ([8001, 9001], [5001, 65535, 70000]),
        "step": ([2, 1, 3], [0, -2, True, 2.0]),
        "max_port": ([65535, 20000], [9000, 70000]),
        "skip_bad_ports": ([True, False], [1, None]),
        "probe": ([True, False], [0, "no"]),
        "reserved": ([[], *_RESERVED], _BAD_RESERVED),
        "pools": ([[], draw(_pools())], [None, {}, [[]]]),
        "worktrees": (["shared", "separate"], ["apart", True, None]),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(values)), unique=True))
    pairs: Pairs = [(name, draw(_mostly(*values[name], odds=5))) for name in chosen]
    if not pairs:
        return _Obj(draw(_mostly([[]], [[("pools", [])], [("step", None)]])))  # type: ignore[arg-type]
    return _Obj(draw(_mutated(pairs, st.tuples(st.sampled_from([*values, "other"]), _any_scalar))))


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(_rows(), max_size=4))
    top: Pairs = [
        ("version", draw(_mostly([1, 2], [3, 0, True, 1.0, "1"], odds=8))),
        ("policy", draw(_policies() | _mostly([_Obj([])], [None, []]))),
        ("allocations", draw(_mostly([rows], [_Obj([]), None, "[]"]))),
    ]
    extra = st.tuples(st.sampled_from(["version", "policy", "allocations", "extra"]), st.just(rows) | _any_scalar)
    text = _dump(_Obj(draw(_mutated(top, extra))))
    encoding = draw(_mostly(["utf-8"], ["utf-16", "utf-8-sig"]))
    data = text.encode(str(encoding), "surrogatepass")
    return data[: draw(st.integers(0, len(data)))] if draw(st.integers(0, 19)) == 0 else data


def fast(data: bytes, model: str, app_num: int) -> tuple[int, int, bool] | None:
    """What the fast reader answers for a key in ``data``, as ``lookup.find_pair`` asks it."""
    try:
        checked = read_checked(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if checked is None:
        return None
    found = next((row for row in checked.rows if row[:2] == (model, app_num)), None)
    return None if found is None else (found[2], found[3], checked.policy["probe"])


def validated(data: bytes) -> Ledger | None:
    """The ledger pydantic validates from ``data`` (the reference), checked against the fast reader; else ``None``."""
    try:
        ledger: Ledger | None = validate_ledger(data, "generated.json")
    except LedgerCorrupt:
        ledger = None
    assert_same_ledger(data, ledger)
    return ledger


def assert_same_ledger(data: bytes, ledger: Ledger | None) -> None:
    """What the fast reader accepts, the models accept, and ``parse_ledger`` builds from its reading the very ledger
    pydantic validates (policy defaults and NFC names included); a write spells the policy as the models dump it."""
    try:
        checked = read_checked(data.decode("utf-8"))
    except UnicodeDecodeError:
        checked = None
    if checked is None:
        return
    assert ledger is not None and checked.policy == ledger.policy.model_dump()
    built = parse_ledger(data, "generated.json")
    assert built == ledger and built.model_dump() == ledger.model_dump()
    assert policy_fields(built.policy) == policy_fields(ledger.policy) == ledger.policy.model_dump()
    assert dump_ledger(built) == dump_ledger(ledger)


@settings(max_examples=250, deadline=None)
@given(_documents())
def test_the_fast_reader_agrees_with_the_full_parser(data: bytes) -> None:
    ledger = validated(data)
    for model, app_num in _QUERIES:
        hit = fast(data, model, app_num)
        full = ledger.find(model, app_num) if ledger is not None else None
        if full is None:
            assert hit is None  # a refused file, or no such row: the caller takes the full path
        elif sum(a.key == (model, app_num) for a in ledger.allocations) > 1:
            # A key written twice (a careless merge): the fast path may decline; if it answers, the same.
            assert hit in (None, (full.backend, full.frontend, ledger.policy.probe))
        else:
            # A valid file with the key: the fast path must answer, and answer the same.
            assert ledger is not None and hit == (full.backend, full.frontend, ledger.policy.probe)


# --- the canonical layout, read line by line ------------------------------------------------


def _canonical_text(top: Pairs, rows: list[_Obj]) -> str:
    """``top`` and ``rows`` laid out as ``dump_ledger`` lays out a ledger (whatever their values)."""
    body = "[]" if not rows else "[\n" + ",\n".join("    " + _dump(row) for row in rows) + "\n  ]"
    head = "".join(f"  {json.dumps(name)}: {_dump(value)},\n" for name, value in top)
    return "{\n" + head + f'  "allocations": {body}\n}}\n'


@st.composite
def _canonical_documents(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(_rows(), max_size=4))
    top: Pairs = [
        ("version", draw(_mostly([1, 2], [3, True, 1.0, "1", 10**12], odds=8))),
        ("policy", draw(_policies() | _mostly([_Obj([])], [None, []]))),
    ]
    text = _canonical_text(draw(_mutated(top, st.tuples(st.sampled_from(["version", "policy"]), _any_scalar))), rows)
    # Now and then an edit a person or a merge makes: a character dropped or doubled, a tab for spaces.
    edit = draw(st.integers(0, 9))
    if edit == 0 and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + text[at + 1 :]
    elif edit == 1 and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + text[at] + text[at:]
    elif edit == 2:
        text = text.replace("    {", "\t{", 1)
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=250, deadline=None)
@given(_canonical_documents())
def test_the_canonical_reading_agrees_with_the_full_parser(data: bytes) -> None:
    ledger = validated(data)
    for model, app_num in _QUERIES:
        hit = fast(data, model, app_num)
        full = ledger.find(model, app_num) if ledger is not None else None
        if full is None:
            assert hit is None
        elif ledger.policy.separate_worktrees:  # type: ignore[union-attr]
            # The fast path leaves separate worktrees' pairs to the service: it may defer, never answer otherwise.
            assert hit in (None, (full.backend, full.frontend, ledger.policy.probe))  # type: ignore[union-attr]
        else:
            assert hit == (full.backend, full.frontend, ledger.policy.probe)  # type: ignore[union-attr]
    # What the line-by-line reading accepts, it reads exactly as the duplicate-refusing parser does.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    by_lines = canonical_document(text)
    if by_lines is not None:
        assert by_lines._replace(lines=None) == parsed_document(parse_json(text))
        assert by_lines.lines is not None and len(by_lines.lines) == len(by_lines.rows)


def test_a_written_ledger_takes_the_canonical_reading(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    service.allocate_many([("a", 1), ("caf\u00e9", 2), ("openai/gpt-4o", 3)])
    text = ledger_path.read_text()
    document = canonical_document(text)
    assert document is not None and document._replace(lines=None) == parsed_document(parse_json(text))
    assert [row[:2] for row in document[2]] == [("a", 1), ("caf\u00e9", 2), ("openai/gpt-4o", 3)]
    hit = find_pair(ledger_path, "caf\u00e9", 2)
    found = service.get_ports("caf\u00e9", 2)
    assert hit is not None and found is not None and hit.ports == found.ports
    # A model that needs an escape is not in the pattern: the full parse reads that file, and agrees.
    service.allocate_many([('quote"d', 1)])
    assert canonical_document(ledger_path.read_text()) is None
    hit = find_pair(ledger_path, 'quote"d', 1)
    found = service.get_ports('quote"d', 1)
    assert hit is not None and found is not None and hit.ports == found.ports


@st.composite
def _list_policies(draw: st.DrawFn) -> bytes:
    """A valid ledger head whose policy holds reserved ports and pools, mostly valid, and one row."""
    pairs: Pairs = [
        ("backend_start", 5001),
        ("frontend_start", draw(st.sampled_from([5009, 8001]))),  # 4 pairs, or 1,500
        ("reserved", draw(_mostly(_RESERVED, _BAD_RESERVED, odds=4))),
        ("pools", draw(_pools())),
    ]
    policy = _Obj(draw(_mutated(draw(st.permutations(pairs)), st.tuples(st.just("reserved"), st.just([])), odds=8)))
    row = _Obj([("model", "a"), ("app_num", 1), ("backend", 5003), ("frontend", 8003)])
    text = _dump(_Obj([("version", 1), ("policy", policy), ("allocations", [row])]))
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(_list_policies())
def test_the_fast_reader_checks_reserved_ports_and_pools_as_the_models_do(data: bytes) -> None:
    ledger = validated(data)
    # Every policy the models accept, the fast reader reads too: a get of an existing key stays fast.
    if ledger is not None:
        assert fast(data, "a", 1) == (5003, 8003, True)
