"""The read-only fast path: a hit only when the file is unambiguous, else None (the full path decides)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portalloc.core.models import Ledger
from portalloc.errors import LedgerCorrupt
from portalloc.service.facade import PortAllocationService
from portalloc.storage.ledger import parse_ledger
from portalloc.storage.lookup import _document, canonical_document, find_pair
from portalloc.storage.strictjson import parse_json


def test_finds_an_existing_pair(ledger_path: Path) -> None:
    PortAllocationService(ledger_path).allocate_many([("a", 1), ("b", 2)])
    hit = find_pair(ledger_path, "b", 2)
    assert hit is not None and hit.ports == (5003, 8003) and hit.probe
    assert find_pair(ledger_path, "b", 1) is None
    assert find_pair(ledger_path, "B", 2) is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"version": 2, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}]}',
        '{"version": 1, "allocations": {}}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": true, "backend": 5001, "frontend": 8001}]}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": "5001", "frontend": 8001}]}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 80, "frontend": 8001}]}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 8001, "frontend": 8001}]}',
    ],
)
def test_anything_irregular_defers_to_the_full_path(ledger_path: Path, content: str) -> None:
    ledger_path.write_text(content)
    assert find_pair(ledger_path, "a", 1) is None


def test_missing_file_or_directory(tmp_path: Path) -> None:
    assert find_pair(tmp_path / "nope.json", "a", 1) is None
    assert find_pair(tmp_path, "a", 1) is None


def test_agrees_with_the_service_on_the_first_of_duplicate_rows(ledger_path: Path) -> None:
    rows = [
        {"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001},
        {"model": "a", "app_num": 1, "backend": 5003, "frontend": 8003},
    ]
    ledger_path.write_text(json.dumps({"version": 1, "allocations": rows}))
    found = PortAllocationService(ledger_path).get_ports("a", 1)
    assert found is not None
    hit = find_pair(ledger_path, "a", 1)
    assert hit is not None and hit.ports == found.ports == (5001, 8001)


def test_reports_a_policy_that_turns_probing_off(ledger_path: Path) -> None:
    row = {"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}
    ledger_path.write_text(json.dumps({"version": 1, "policy": {"probe": False}, "allocations": [row]}))
    hit = find_pair(ledger_path, "a", 1)
    assert hit is not None and not hit.probe


@pytest.mark.parametrize(
    "content",
    [
        # The reproductions: get answered from these while check called the file invalid.
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "backend": 5003, '
        '"frontend": 8001}]}',
        '{"version": 1, "allocations": [], "allocations": [{"model": "a", "app_num": 1, "backend": 5001, '
        '"frontend": 8001}]}',
        '{"version": true, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}]}',
        # The matched row is fine; another row or the policy is not, so the file is not a ledger.
        '{"version": 1, "policy": {"step": 0}, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, '
        '"frontend": 8001}]}',
        '{"version": 1, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}, '
        '{"model": "b\\udcff", "app_num": 1, "backend": 5003, "frontend": 8003}]}',
        '{"version": 1, "extra": 0, "allocations": [{"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}]}',
    ],
)
def test_a_file_the_full_parser_refuses_gets_no_answer(ledger_path: Path, content: str) -> None:
    ledger_path.write_text(content)
    with pytest.raises(LedgerCorrupt):
        parse_ledger(ledger_path.read_bytes(), ledger_path)
    assert find_pair(ledger_path, "a", 1) is None


def test_a_fifo_is_not_read(ledger_path: Path) -> None:
    os.mkfifo(ledger_path)
    assert find_pair(ledger_path, "a", 1) is None  # returns at once: opened without blocking, then refused


def test_an_nfd_row_is_found_by_its_nfc_name(ledger_path: Path) -> None:
    row = {"model": "cafe\u0301", "app_num": 1, "backend": 5001, "frontend": 8001}
    ledger_path.write_text(json.dumps({"version": 1, "allocations": [row]}))
    hit = find_pair(ledger_path, "caf\u00e9", 1)
    found = PortAllocationService(ledger_path).get_ports("cafe\u0301", 1)
    assert hit is not None and found is not None and hit.ports == found.ports == (5001, 8001)


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
def _policies(draw: st.DrawFn) -> _Obj:
    values: dict[str, tuple[list[object], list[object]]] = {
        "backend_start": ([5001, 6001], [8001, 1023, True, "5001"]),
        "frontend_start": ([8001, 9001], [5001, 65535, 70000]),
        "step": ([2, 1, 3], [0, -2, True, 2.0]),
        "max_port": ([65535, 20000], [9000, 70000]),
        "skip_bad_ports": ([True, False], [1, None]),
        "probe": ([True, False], [0, "no"]),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(values)), unique=True))
    pairs: Pairs = [(name, draw(_mostly(*values[name], odds=5))) for name in chosen]
    if not pairs:
        return _Obj(draw(_mostly([[]], [[("pools", [])], [("step", None)]])))  # type: ignore[arg-type]
    return _Obj(draw(_mutated(pairs, st.tuples(st.sampled_from([*values, "pools"]), _any_scalar))))


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(_rows(), max_size=4))
    top: Pairs = [
        ("version", draw(_mostly([1], [2, True, 1.0, "1"], odds=8))),
        ("policy", draw(_policies() | _mostly([_Obj([])], [None, []]))),
        ("allocations", draw(_mostly([rows], [_Obj([]), None, "[]"]))),
    ]
    extra = st.tuples(st.sampled_from(["version", "policy", "allocations", "extra"]), st.just(rows) | _any_scalar)
    text = _dump(_Obj(draw(_mutated(top, extra))))
    encoding = draw(_mostly(["utf-8"], ["utf-16", "utf-8-sig"]))
    data = text.encode(str(encoding), "surrogatepass")
    return data[: draw(st.integers(0, len(data)))] if draw(st.integers(0, 19)) == 0 else data


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_documents())
def test_the_fast_path_agrees_with_the_full_parser(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "generated.json"
    path.write_bytes(data)
    try:
        ledger: Ledger | None = parse_ledger(data, path)
    except LedgerCorrupt:
        ledger = None
    for model, app_num in _QUERIES:
        hit = find_pair(path, model, app_num)
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
        ("version", draw(_mostly([1], [2, True, 1.0, "1", 10**12], odds=8))),
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


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_canonical_documents())
def test_the_canonical_reading_agrees_with_the_full_parser(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "generated.json"
    path.write_bytes(data)
    try:
        ledger: Ledger | None = parse_ledger(data, path)
    except LedgerCorrupt:
        ledger = None
    for model, app_num in _QUERIES:
        hit = find_pair(path, model, app_num)
        full = ledger.find(model, app_num) if ledger is not None else None
        if full is None:
            assert hit is None
        elif b'"pools"' in data or b'"reserved"' in data:
            # The fast path knows no pools or reserved ports: it may defer, but never answer otherwise.
            assert hit in (None, (full.backend, full.frontend, ledger.policy.probe))  # type: ignore[union-attr]
        else:
            assert hit == (full.backend, full.frontend, ledger.policy.probe)  # type: ignore[union-attr]
    # What the line-by-line reading accepts, it reads exactly as the duplicate-refusing parser does.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    fast = canonical_document(text)
    if fast is not None:
        assert fast == _document(parse_json(text))


def test_a_written_ledger_takes_the_canonical_reading(ledger_path: Path) -> None:
    service = PortAllocationService(ledger_path)
    service.allocate_many([("a", 1), ("caf\u00e9", 2), ("openai/gpt-4o", 3)])
    text = ledger_path.read_text()
    document = canonical_document(text)
    assert document is not None and document == _document(parse_json(text))
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
