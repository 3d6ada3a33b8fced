"""Compose's ``${…}`` rules (``portalloc.integrations.interpolation``), shared by compose files and ``.env`` files."""

from __future__ import annotations

import pytest

from portalloc.integrations.interpolation import Interpolator, Unresolved


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("$A-x", "1-x"),
        ("$$A", "$A"),
        ("${UNSET}", ""),  # compose: unset reads as empty, with a warning
        ("${UNSET:-5001}", "5001"),
        ("${EMPTY:-5001}", "5001"),
        ("${EMPTY-5001}", ""),
        ("${A:-5001}", "1"),
        ("${UNSET:-${A}0}", "10"),
        ("${A:+on}|${UNSET:+on}", "on|"),
        ("${A:?needed}", "1"),
        ("127.0.0.1:${A}:80", "127.0.0.1:1:80"),
    ],
)
def test_interpolation(text: str, expected: str) -> None:
    assert Interpolator({"A": "1", "EMPTY": ""})(text) == expected


@pytest.mark.parametrize("text", ["${UNSET:?set it}", "${EMPTY:?x}", "${A", "${:80", "${X-${Y:-" * 40 + "}" * 80])
def test_what_compose_refuses_is_unresolved(text: str) -> None:
    with pytest.raises(Unresolved):
        Interpolator({"A": "1", "EMPTY": ""})(text)


def test_unset_names_are_remembered_for_the_warning() -> None:
    run = Interpolator({"A": "1"})
    assert run("${A}${B}$C${D:-x}") == "1x"
    assert run.unset == {"B", "C"}
