"""The pure three-way merge and repair (``portalloc.core.merge``)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from portalloc.core.allocator import assign_many, release_many
from portalloc.core.audit import find_conflicts
from portalloc.core.merge import Sides, merge_ledgers, repair_ledger
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.errors import NoFreePair, PolicyMismatch


def row(model: str, app_num: int, backend: int, frontend: int) -> Allocation:
    return Allocation(model=model, app_num=app_num, backend=backend, frontend=frontend)


def ledger(*rows: Allocation, policy: PortPolicy | None = None) -> Ledger:
    # Built the way parse_ledger builds it: rows in the given (file) order, not sorted.
    return Ledger(policy=policy or PortPolicy(), allocations=list(rows))


def pairs(result: Ledger) -> dict[tuple[str, int], tuple[int, int]]:
    return {a.key: a.ports for a in result.allocations}


def allocate(base: Ledger, *keys: tuple[str, int]) -> Ledger:
    return assign_many(base, keys)[0]


BASE = allocate(Ledger(), ("a", 1), ("b", 1))  # a/1 5001/8001, b/1 5003/8003


def test_different_apps_on_each_side_are_both_kept_and_the_clash_moves_theirs() -> None:
    ours = allocate(BASE, ("c", 1))  # 5005/8005
    theirs = allocate(BASE, ("d", 1))  # 5005/8005 as well
    result, moves = merge_ledgers(BASE, ours, theirs)
    assert pairs(result) == {
        ("a", 1): (5001, 8001),
        ("b", 1): (5003, 8003),
        ("c", 1): (5005, 8005),
        ("d", 1): (5007, 8007),
    }
    assert [m.describe() for m in moves] == [
        "d/1 of theirs from 5005/8005 to 5007/8007 (port 5005 is held by c/1 of ours)"
    ]
    assert find_conflicts(result.allocations) == []


def test_same_key_allocated_differently_keeps_ours() -> None:
    ours = allocate(allocate(BASE, ("x", 1)), ("c", 1))  # x/1 5005, c/1 5007
    theirs = allocate(BASE, ("c", 1))  # c/1 5005
    result, moves = merge_ledgers(BASE, ours, theirs)
    assert pairs(result)[("c", 1)] == (5007, 8007)
    assert pairs(result)[("x", 1)] == (5005, 8005)
    assert [m.describe() for m in moves] == [
        "c/1 of theirs from 5005/8005 to 5007/8007 (both sides allocated it; ours is kept)"
    ]


def test_sides_are_named_in_every_message() -> None:
    sides = Sides(ours="ours (main)", theirs="theirs (feature)")
    ours = allocate(BASE, ("c", 1))
    theirs = ledger(*allocate(BASE, ("d", 1)).allocations, row("d", 1, 5021, 8021))  # d/1 twice
    assert [m.describe() for m in merge_ledgers(BASE, ours, theirs, sides).moves] == [
        "d/1 of theirs (feature) from 5021/8021 to 5007/8007 (d/1 is listed twice in theirs (feature); "
        "its first row is kept)",
        "d/1 of theirs (feature) from 5005/8005 to 5007/8007 (port 5005 is held by c/1 of ours (main))",
    ]
    mine, other = Ledger(policy=PortPolicy(step=3)), Ledger(policy=PortPolicy(step=4))
    with pytest.raises(PolicyMismatch, match=r"\(ours \(main\): .*step 3.*; theirs \(feature\): .*step 4"):
        merge_ledgers(BASE, mine, other, sides)


def test_a_key_only_one_side_changed_takes_that_sides_pair() -> None:
    # Theirs moved b/1 (a repair there, say) and ours left it alone: theirs' pair, no message.
    theirs = ledger(row("a", 1, 5001, 8001), row("b", 1, 5011, 8011))
    ours = allocate(BASE, ("c", 1))
    result, moves = merge_ledgers(BASE, ours, theirs)
    assert pairs(result) == {("a", 1): (5001, 8001), ("b", 1): (5011, 8011), ("c", 1): (5005, 8005)}
    assert moves == []
    # ... unless ours took that pair meanwhile: ours keeps it, theirs' row moves.
    ours = allocate(allocate(BASE, ("c", 1), ("d", 1), ("e", 1)), ("f", 1))  # f/1 5011/8011
    result, moves = merge_ledgers(BASE, ours, theirs)
    assert pairs(result)[("f", 1)] == (5011, 8011)
    assert [m.describe() for m in moves] == [
        "b/1 of theirs from 5011/8011 to 5003/8003 (port 5011 is held by f/1 of ours)"
    ]


def test_rebase_replay_of_a_second_commit_does_not_report_an_untouched_row() -> None:
    # Commit 1 allocated x/1 (5005) and was replayed onto a main holding z/1 on 5005, so
    # x/1 moved to 5007. Commit 2 only added y/1. Replaying it: base = commit 1,
    # ours = the rebased commit 1, theirs = commit 2; x/1 differs but theirs never touched it.
    commit1 = allocate(BASE, ("x", 1))
    commit2 = allocate(commit1, ("y", 1))  # y/1 5007
    rebased1 = ledger(*allocate(BASE, ("z", 1)).allocations, row("x", 1, 5007, 8007))
    result, moves = merge_ledgers(commit1, rebased1, commit2)
    assert pairs(result)[("x", 1)] == (5007, 8007)
    assert [m.describe() for m in moves] == [
        "y/1 of theirs from 5007/8007 to 5009/8009 (port 5007 is held by x/1 of ours)"
    ]


def test_released_on_one_side_and_untouched_on_the_other_stays_released() -> None:
    for ours, theirs in [
        (release_many(BASE, [("a", 1)])[0], BASE),
        (BASE, release_many(BASE, [("a", 1)])[0]),
    ]:
        result, moves = merge_ledgers(BASE, ours, theirs)
        assert pairs(result) == {("b", 1): (5003, 8003)}
        assert moves == []


def test_released_on_one_side_but_changed_on_the_other_is_kept() -> None:
    changed = ledger(row("a", 1, 5009, 8009), row("b", 1, 5003, 8003))
    released = release_many(BASE, [("a", 1)])[0]
    assert pairs(merge_ledgers(BASE, released, changed).ledger)[("a", 1)] == (5009, 8009)
    assert pairs(merge_ledgers(BASE, changed, released).ledger)[("a", 1)] == (5009, 8009)


def test_released_on_one_side_and_reallocated_to_another_key_on_the_other() -> None:
    # Theirs released a/1 and gave its ports to z/1; ours kept a/1 unchanged: a/1 goes, z/1 keeps 5001.
    theirs = allocate(release_many(BASE, [("a", 1)])[0], ("z", 1))
    result, moves = merge_ledgers(BASE, BASE, theirs)
    assert pairs(result) == {("b", 1): (5003, 8003), ("z", 1): (5001, 8001)}
    assert moves == []


def test_no_base_means_nothing_was_released() -> None:
    ours = ledger(row("a", 1, 5001, 8001))
    theirs = ledger(row("b", 1, 5001, 8001))
    result, moves = merge_ledgers(None, ours, theirs)
    assert pairs(result) == {("a", 1): (5001, 8001), ("b", 1): (5003, 8003)}
    assert len(moves) == 1


def test_different_policies_are_refused() -> None:
    other = Ledger(policy=PortPolicy(backend_start=20001, frontend_start=30001))
    mine = Ledger(policy=PortPolicy(backend_start=20001, frontend_start=40001))
    with pytest.raises(PolicyMismatch, match="different policies"):
        merge_ledgers(BASE, mine, other)


def test_merge_that_does_not_fit_the_policy_raises() -> None:
    tiny = PortPolicy(backend_start=20000, frontend_start=20002, max_port=20003, step=1)  # 2 pairs
    base = Ledger(policy=tiny)
    ours = ledger(row("a", 1, 20000, 20002), row("b", 1, 20001, 20003), policy=tiny)
    theirs = ledger(row("c", 1, 20000, 20002), policy=tiny)
    with pytest.raises(NoFreePair):
        merge_ledgers(base, ours, theirs)


def test_a_side_with_conflicts_still_merges_clean() -> None:
    ours = ledger(row("a", 1, 5001, 8001), row("b", 1, 5001, 8003), row("a", 1, 5009, 8009))
    result, moves = merge_ledgers(None, ours, Ledger())
    assert pairs(result) == {("a", 1): (5001, 8001), ("b", 1): (5003, 8003)}
    assert find_conflicts(result.allocations) == []
    assert {m.before.ports for m in moves} == {(5009, 8009), (5001, 8003)}


def test_repair_keeps_the_earliest_row_and_never_drops_a_key() -> None:
    # The order of a plain textual merge: not sorted, b before a.
    broken = ledger(
        row("b", 1, 5005, 8005),
        row("a", 1, 5005, 8005),
        row("c", 1, 5001, 8005),  # shares only a frontend
        row("d", 1, 5003, 8003),
        row("b", 1, 5011, 8011),  # b/1 listed twice
    )
    result, moves = repair_ledger(broken)
    assert pairs(result) == {
        ("a", 1): (5001, 8001),
        ("b", 1): (5005, 8005),
        ("c", 1): (5007, 8007),
        ("d", 1): (5003, 8003),
    }
    assert [m.describe() for m in moves] == [
        "b/1 from 5011/8011 to 5005/8005 (b/1 is listed twice; its first row is kept)",
        "a/1 from 5005/8005 to 5001/8001 (port 5005 is held by b/1)",
        "c/1 from 5001/8005 to 5007/8007 (port 8005 is held by b/1)",
    ]
    assert find_conflicts(result.allocations) == []


def test_repair_of_a_clean_ledger_is_the_same_object() -> None:
    assert repair_ledger(BASE) == (BASE, [])
    assert repair_ledger(BASE).ledger is BASE


# --- property ---------------------------------------------------------------------------

# 100 pairs on ports that hold no browser "bad port", so every key fits and none is skipped.
POLICY = PortPolicy(backend_start=20000, frontend_start=20100, max_port=20199, step=1)
KEYS = [(model, app_num) for model in ("a", "b", "c") for app_num in (1, 2, 3, 4)]
backend_ports = st.integers(20000, 20099)
frontend_ports = st.integers(20100, 20199)


@st.composite
def rows_for(draw: st.DrawFn, keys: list[tuple[str, int]]) -> list[Allocation]:
    # Any ports at all, so sides can clash with each other and with themselves.
    return [Allocation(model=m, app_num=n, backend=draw(backend_ports), frontend=draw(frontend_ports)) for m, n in keys]


@st.composite
def side_of(draw: st.DrawFn, base: list[Allocation]) -> list[Allocation]:
    """A branch's ledger: each base row kept, released or re-paired, plus new keys."""
    rows = []
    for allocation in base:
        fate = draw(st.sampled_from(["keep", "release", "change"]))
        if fate == "keep":
            rows.append(allocation)
        elif fate == "change":
            rows.extend(draw(rows_for([allocation.key])))
    taken = {a.key for a in base}
    new_keys = draw(st.lists(st.sampled_from([k for k in KEYS if k not in taken] or KEYS), unique=True))
    rows.extend(draw(rows_for([k for k in new_keys if k not in taken])))
    return draw(st.permutations(rows))


@st.composite
def three_ledgers(draw: st.DrawFn) -> tuple[Ledger, Ledger, Ledger]:
    base = draw(rows_for(draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=8))))
    ours, theirs = draw(side_of(base)), draw(side_of(base))
    return tuple(Ledger(policy=POLICY, allocations=rows) for rows in (base, ours, theirs))  # type: ignore[return-value]


@settings(max_examples=300, deadline=None)
@given(three_ledgers())
def test_merge_is_conflict_free_and_keeps_every_key_not_cleanly_released(
    ledgers: tuple[Ledger, Ledger, Ledger],
) -> None:
    base, ours, theirs = ledgers
    result, _ = merge_ledgers(base, ours, theirs)
    assert find_conflicts(result.allocations) == []
    ours_rows, theirs_rows = pairs(ours), pairs(theirs)
    base_rows = pairs(base)
    expected = set()
    for key in ours_rows.keys() | theirs_rows.keys():
        only = ours_rows if key not in theirs_rows else theirs_rows if key not in ours_rows else None
        if only is not None and base_rows.get(key) == only[key]:
            continue  # released on one side, untouched on the other
        expected.add(key)
    assert {a.key for a in result.allocations} == expected
    # Random ports can clash within one side too; when ours has no clash of its own,
    # each of its surviving rows keeps its pair, unless only their side changed that key.
    if not find_conflicts(ours.allocations):
        for key, ports in pairs(result).items():
            theirs_only_changed = key in theirs_rows and base_rows.get(key) == ours_rows.get(key) != theirs_rows[key]
            if key in ours_rows and not theirs_only_changed:
                assert ports == ours_rows[key]


@settings(max_examples=200, deadline=None)
@given(three_ledgers())
def test_a_side_that_changed_nothing_takes_the_other_side_as_it_is(ledgers: tuple[Ledger, Ledger, Ledger]) -> None:
    # The three-way rule: merging with an untouched copy of base is no merge at all.
    base, changed, _ = ledgers
    assume(not find_conflicts(changed.allocations))  # a conflicted side is settled, not taken as it is
    for ours, theirs in ((base, changed), (changed, base)):
        result, moves = merge_ledgers(base, ours, theirs)
        assert pairs(result) == pairs(changed)
        assert moves == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(KEYS), max_size=16).flatmap(rows_for))
def test_repair_is_conflict_free_and_keeps_every_key(rows: list[Allocation]) -> None:
    broken = Ledger(policy=POLICY, allocations=rows)
    result, moves = repair_ledger(broken)
    assert find_conflicts(result.allocations) == []
    assert {a.key for a in result.allocations} == {a.key for a in rows}
    assert bool(moves) == bool(find_conflicts(rows))
    # The earliest row always keeps its pair.
    if rows:
        assert pairs(result)[rows[0].key] == rows[0].ports
