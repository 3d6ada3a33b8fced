"""How commands print: the table printer measures columns in terminal cells."""

from __future__ import annotations

import pytest

from portalloc.cli.output import MAX_COLUMN_WIDTH, display_width
from tests.conftest import RunCli


@pytest.mark.parametrize(
    ("text", "width"),
    [("model_a", 7), ("caf\u00e9", 4), ("cafe\u0301", 4), ("\u30e2\u30c7\u30eb", 6), ("\uff21", 2), ("", 0)],
)
def test_display_width(text: str, width: int) -> None:
    assert display_width(text) == width


@pytest.mark.usefixtures("new_ledger")
def test_list_aligns_wide_and_combined_names(run_cli: RunCli) -> None:
    for model in ("model_a", "\u30e2\u30c7\u30eb", "caf\u00e9"):
        run_cli("get", model, "1")
    lines = run_cli("list").stdout.splitlines()
    # Every APP cell ends in the same terminal column, whatever the model's script.
    assert {display_width(line.split("  1 ")[0]) for line in lines[1:]} == {display_width(lines[0].split("APP")[0])}
    assert lines[1:] == [
        "caf\u00e9       1     5005      8005",
        "model_a    1     5001      8001",
        "\u30e2\u30c7\u30eb     1     5003      8003",
    ]


@pytest.mark.usefixtures("new_ledger")
def test_one_long_name_does_not_pad_every_row(run_cli: RunCli) -> None:
    long_name = "m" * 200
    for model in ("a", long_name, "b"):
        run_cli("get", model, "1")
    lines = run_cli("list").stdout.splitlines()
    assert lines[0] == "MODEL  APP  BACKEND  FRONTEND"
    assert lines[1] == "a        1     5001      8001"
    assert lines[2] == "b        1     5005      8005"
    assert lines[3] == f"{long_name}    1     5003      8003"
    assert max(map(len, lines[:3])) < MAX_COLUMN_WIDTH
