"""``core.rowdiff``: the rows two lists share at either end, by identity, against a plain loop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portalloc.core.rowdiff import common_ends


class Row:
    """A row that equals every other row: only identity may tell two apart."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def plain_ends(old: list[object], new: list[object]) -> tuple[int, int]:
    shortest = min(len(old), len(new))
    head = 0
    while head < shortest and old[head] is new[head]:
        head += 1
    tail = 0
    while tail < shortest - head and old[-1 - tail] is new[-1 - tail]:
        tail += 1
    return head, tail


@given(
    size=st.integers(0, 30),
    edits=st.lists(st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 40)), max_size=6),
)
def test_the_ends_are_those_a_plain_loop_finds(size: int, edits: list[tuple[str, int]]) -> None:
    old: list[object] = [Row() for _ in range(size)]
    new = list(old)
    for edit, at in edits:
        if edit == "insert":
            new.insert(at % (len(new) + 1), Row())
        elif new:
            if edit == "delete":
                del new[at % len(new)]
            else:
                new[at % len(new)] = Row()  # equal to the row it replaces, but not the same row
    head, tail = common_ends(old, new)
    assert (head, tail) == plain_ends(old, new)
    assert head + tail <= min(len(old), len(new))


def test_one_insertion_leaves_one_row_between_the_ends() -> None:
    old: list[object] = [Row() for _ in range(1000)]
    new = [*old[:400], Row(), *old[400:]]
    assert common_ends(old, new) == (400, 600)
    assert common_ends(old, old) == (1000, 0)
    assert common_ends([], new) == (0, 0)
