"""The write path's shortcuts give exactly what the long way gives.

* ``LedgerFile`` formats only rows it has not formatted before: its bytes are
  ``dump_ledger``'s, byte for byte.
* Re-reading a file another writer changed validates only the rows it does not know:
  the ledger (or the error) is ``parse_ledger``'s.
* ``Ledger.with_added`` carries the lookup index, used ports and model names over: they are what
  a fresh ledger computes.
* The allocator's C-speed scan hands out the pair a plain scan from pair 0 would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portalloc.core import allocator, policyrules
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.errors import LedgerCorrupt
from portalloc.storage.codec import dump_ledger, parse_ledger
from portalloc.storage.files import atomic_write
from portalloc.storage.ledger import LedgerFile
from tests.testing.core import assign

MODELS = ["model_a", "model_b", 'quote"d', "back\\slash", "modèle", "emoji 😀", "openai/gpt-4o"]


def build(keys: list[tuple[str, int]], policy: PortPolicy | None = None) -> Ledger:
    ledger, _ = allocator.assign_many(Ledger(policy=policy or PortPolicy()), keys)
    return ledger


# --- formatting ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(MODELS), st.integers(1, 40)), max_size=40))
def test_cached_lines_write_what_dump_ledger_writes(tmp_path_factory: pytest.TempPathFactory, steps: list) -> None:
    path = tmp_path_factory.mktemp("l") / "portalloc.json"
    ledger_file = LedgerFile(path)
    for allocate, model, app_num in steps:
        if allocate:
            ledger_file.update(lambda ledger, key=(model, app_num): assign(ledger, *key))
        else:
            ledger_file.update(lambda ledger, key=(model, app_num): allocator.release(ledger, *key))
        if path.exists():
            data = path.read_bytes()
            assert data == dump_ledger(parse_ledger(data, path))


# --- re-reading what another writer changed -----------------------------------------------


def reread(path: Path, before: bytes, after: bytes) -> Ledger:
    """What a ``LedgerFile`` that had read ``before`` reads once the file holds ``after``."""
    atomic_write(path, before)
    ledger_file = LedgerFile(path)
    ledger_file.read()
    atomic_write(path, after)  # a new inode, as every writer leaves
    return ledger_file.read()


def same(a: Ledger, b: Ledger) -> None:
    assert (a.version, a.policy, a.allocations) == (b.version, b.policy, b.allocations)
    assert dump_ledger(a) == dump_ledger(b)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(MODELS), st.integers(1, 30)), max_size=25, unique=True),
    st.lists(st.tuples(st.sampled_from(MODELS), st.integers(1, 30)), max_size=10, unique=True),
    st.lists(st.integers(0, 24), max_size=5),
)
def test_changed_rows_read_as_a_full_parse_reads_them(
    tmp_path_factory: pytest.TempPathFactory, first: list, added: list, removed: list
) -> None:
    path = tmp_path_factory.mktemp("l") / "portalloc.json"
    before = build(first)
    after, _ = allocator.assign_many(before, added)
    doomed = [before.allocations[i].key for i in removed if i < len(before.allocations)]
    after, _ = allocator.release_many(after, doomed)
    data = dump_ledger(after)
    same(reread(path, dump_ledger(before), data), parse_ledger(data, path))


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda text: text.replace('"app_num": 2,', '"app_num": true,'), id="bool-for-int"),
        pytest.param(lambda text: text.replace('"app_num": 2,', '"app_num": 2.0,'), id="float-for-int"),
        pytest.param(lambda text: text.replace('"backend": 5003,', '"backend": 5003, "backend": 5005,'), id="dup-name"),
        pytest.param(lambda text: text.replace('"frontend": 8003}', '"frontend": 8003, "x": 1}'), id="extra-field"),
        pytest.param(lambda text: text.replace('"frontend": 8003}', '"frontend": 5003}'), id="same-port-twice"),
        pytest.param(lambda text: text.replace('"frontend": 8003}', '"frontend": 8003}, 7'), id="not-an-object"),
        pytest.param(lambda text: text.replace('"frontend": 8003}', '"frontend": 8003'), id="bad-json"),
    ],
)
def test_a_bad_changed_row_is_reported_as_a_full_parse_reports_it(ledger_path: Path, edit) -> None:
    before = dump_ledger(build([("a", 1), ("a", 2), ("a", 3)]))
    after = edit(before.decode()).encode()
    assert after != before
    with pytest.raises(LedgerCorrupt) as full:
        parse_ledger(after, ledger_path)
    with pytest.raises(LedgerCorrupt) as incremental:
        reread(ledger_path, before, after)
    assert str(incremental.value) == str(full.value)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda text: json.dumps(json.loads(text), indent=4) + "\n", id="reformatted"),
        pytest.param(lambda text: json.dumps(json.loads(text)), id="one-line"),
        pytest.param(lambda text: text.replace('"model": "a", "app_num": 1', '"app_num": 1, "model": "a"'), id="keys"),
        pytest.param(lambda text: text.replace("5001", "5099").replace("8001", "8099"), id="moved"),
        pytest.param(lambda text: text.replace('"step": 2', '"step": 4'), id="policy"),
    ],
)
def test_other_layouts_and_changes_read_as_a_full_parse_reads_them(ledger_path: Path, edit) -> None:
    before = dump_ledger(build([("a", 1), ("a", 2), ("b", 1)]))
    after = edit(before.decode()).encode()
    same(reread(ledger_path, before, after), parse_ledger(after, ledger_path))


# --- derived data carried over --------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(MODELS), st.integers(1, 30)), max_size=25, unique=True),
    st.lists(st.tuples(st.sampled_from(["new", "z", "0"]), st.integers(1, 30)), max_size=12, unique=True),
    st.booleans(),
)
def test_with_added_equals_with_allocations(first: list, added_keys: list, warm: bool) -> None:
    ledger = build(first)
    if warm:
        ledger.find("", 1)
        _ = ledger.used_ports, ledger.model_names
    added = [
        Allocation(model=model, app_num=app_num, backend=20001 + i, frontend=40001 + i)
        for i, (model, app_num) in enumerate(added_keys)
    ]
    fast = ledger.with_added(added)
    slow = ledger.with_allocations([*ledger.allocations, *added])
    assert fast.allocations == slow.allocations
    assert fast.used_ports == frozenset(p for a in slow.allocations for p in a.ports)
    assert fast.model_names == {a.model for a in slow.allocations}
    for allocation in slow.allocations:
        assert fast.find(*allocation.key) is allocation
    assert fast.find("missing", 1) is None
    assert dump_ledger(fast) == dump_ledger(slow)


def naive_next_free(ledger: Ledger, taken: set[int]) -> tuple[int, int]:
    used = set(ledger.used_ports) | taken
    policy = ledger.policy
    for k in range(policy.pair_count):
        backend, frontend = policy.pair(k)
        if backend not in used and frontend not in used and not policyrules.is_bad_pair(policy, backend, frontend):
            return backend, frontend
    raise AssertionError("full")


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 60), max_size=40),
    st.lists(st.integers(5001, 5140), max_size=30),
    st.sets(st.integers(5001, 8140), max_size=30),
    st.integers(1, 8),
)
def test_scan_hands_out_what_a_scan_from_pair_0_would(pairs: list, strays: list, taken: set, count: int) -> None:
    policy = PortPolicy(backend_start=5001, frontend_start=5101, step=1, max_port=5300)
    rows = [
        Allocation(model="on", app_num=i + 1, backend=5001 + k, frontend=5101 + k) for i, k in enumerate(set(pairs))
    ]
    # Off-sequence rows hold ports in either role, as an old or hand-edited ledger may.
    rows += [Allocation(model="off", app_num=i + 1, backend=port, frontend=5301 + i) for i, port in enumerate(strays)]
    ledger = Ledger(policy=policy).with_allocations(rows)
    expected = []
    reference, extra = ledger, set(taken)
    for j in range(count):
        try:
            pair = naive_next_free(reference, extra)
        except AssertionError:
            break
        expected.append(pair)
        reference = reference.with_allocations(
            [
                *reference.allocations,
                Allocation.model_construct(model="new", app_num=j + 1, backend=pair[0], frontend=pair[1]),
            ]
        )
    keys = [("new", j + 1) for j in range(len(expected))]
    _, assignments = allocator.assign_many(ledger, keys, taken)
    assert [a.allocation.ports for a in assignments] == expected
