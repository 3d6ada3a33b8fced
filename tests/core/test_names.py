"""What a new model name must be: no look-alike of an existing model, every code point known here.

The look-alikes are the issue's own: each got its own pair and printed like ``model_a``.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from portalloc.core import allocator
from portalloc.core.models import Allocation, Ledger
from portalloc.core.names import check_new_model, look_alike, skeleton
from portalloc.errors import ConfusableName, InvalidKey
from portalloc.integrations.importers import ImportRow, plan_import
from tests.cli.test_cli import assert_one_error_line
from tests.conftest import RunCli

#: (new name, the existing model it looks like)
LOOK_ALIKES = [
    ("model_\u0430", "model_a"),  # Cyrillic small a
    ("m\u03bfdel_a", "model_a"),  # Greek small omicron
    ("\ufb01le", "file"),  # the ligature fi (a compatibility form: NFKC)
    ("model\u2010a", "model-a"),  # U+2010 HYPHEN
    ("\uff4dodel_a", "model_a"),  # fullwidth m
]
#: Names that are different models and must stay allowed side by side.
DIFFERENT = [("model_a", "model_b"), ("model_a", "model-a"), ("gpt-4o", "gpt-4"), ("café", "cafe"), ("Model", "model")]
#: Assigned in Unicode 15.0 (Python 3.12+): a ledger a newer Python wrote may hold it.
WIRELESS = "\U0001f6dc"


@pytest.mark.parametrize(("new", "existing"), LOOK_ALIKES)
def test_look_alikes_have_one_skeleton(new: str, existing: str) -> None:
    assert new != existing
    assert skeleton(new) == skeleton(existing)
    assert look_alike(new, ["other", existing]) == existing


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_names_stay_apart(one: str, other: str) -> None:
    assert look_alike(one, [other]) is None
    check_new_model(one, [other])


def test_a_look_alike_is_refused_naming_the_existing_model_unless_allowed() -> None:
    with pytest.raises(ConfusableName, match=r"looks the same as the existing model 'model_a' \(U\+0430 CYRILLIC"):
        check_new_model("model_\u0430", ["model_a"])
    check_new_model("model_\u0430", ["model_a"], allow_confusable=True)


@pytest.mark.skipif(unicodedata.category(WIRELESS) != "Cn", reason="this Python's Unicode assigns U+1F6DC")
def test_a_new_name_with_a_code_point_this_python_does_not_assign_is_refused() -> None:
    with pytest.raises(InvalidKey, match=r"U\+1F6DC, which this Python's Unicode \(\d+\.\d+\.\d+\) does not assign"):
        check_new_model(f"router{WIRELESS}", [])


def _ledger(*models: str) -> Ledger:
    return Ledger().with_allocations(
        Allocation(model=model, app_num=1, backend=5001 + 2 * n, frontend=8001 + 2 * n)
        for n, model in enumerate(models)
    )


def test_the_allocator_refuses_a_look_alike_even_within_one_batch() -> None:
    with pytest.raises(ConfusableName, match="'model_a'"):
        allocator.assign_many(_ledger("model_a"), [("model_\u0430", 1)])
    with pytest.raises(ConfusableName, match="'file'"):
        allocator.assign_many(Ledger(), [("file", 1), ("\ufb01le", 1)])
    ledger, assignments = allocator.assign_many(_ledger("model_a"), [("model_\u0430", 1)], allow_confusable=True)
    assert [a.allocation.model for a in assignments] == ["model_\u0430"]
    # Existing look-alikes (written before this rule, or allowed) keep working: only a new model is checked.
    _, more = allocator.assign_many(ledger, [("model_\u0430", 2), ("model_a", 2)])
    assert [a.created for a in more] == [True, True]


def test_import_skips_a_look_alike_row() -> None:
    rows = [ImportRow("row 1", "m\u03bfdel_a", 3, 5101, 8101), ImportRow("row 2", "model_b", 1, 5103, 8103)]
    _, report = plan_import(_ledger("model_a"), rows)
    assert [(o.row.model, o.status) for o in report.outcomes] == [("m\u03bfdel_a", "skipped"), ("model_b", "imported")]
    assert "looks the same as the existing model 'model_a'" in (report.outcomes[0].reason or "")
    _, allowed = plan_import(_ledger("model_a"), rows, allow_confusable=True)
    assert [o.status for o in allowed.outcomes] == ["imported", "imported"]


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize(("new", "existing"), LOOK_ALIKES)
def test_cli_refuses_a_look_alike_in_one_line(run_cli: RunCli, ledger_path: Path, new: str, existing: str) -> None:
    assert run_cli("get", existing, "1").exit_code == 0
    before = ledger_path.read_bytes()
    for args in (("get", new, "1"), ("dotenv", new, "1", str(ledger_path.parent / "x.env"))):
        result = run_cli(*args)
        assert result.exit_code == 1, result.output
        assert_one_error_line(result.stderr)
        assert f"the existing model {existing!r}" in result.stderr and "--allow-confusable" in result.stderr
    batch = run_cli("get-many", input=f"other 1\n{new} 2\n")
    assert batch.exit_code == 1 and f"{existing!r}" in batch.stderr
    assert ledger_path.read_bytes() == before  # nothing allocated, not even the batch's good key
    allowed = run_cli("--allow-confusable", "get", new, "1", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["model"] == unicodedata.normalize("NFC", new)


def test_a_ledger_a_newer_python_wrote_loads_and_its_models_take_new_apps(run_cli: RunCli, ledger_path: Path) -> None:
    """U+1F6DC is assigned on 3.13: a ledger written there holds it, and 3.11 must read it."""
    model = f"router{WIRELESS}"
    row = {"model": model, "app_num": 1, "backend": 5001, "frontend": 8001}
    document = {"version": 1, "policy": {}, "allocations": [row]}
    ledger_path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    listed = run_cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["model"] == model
    assert json.loads(run_cli("get", model, "1", "--json").stdout)["backend"] == 5001
    more = run_cli("get", model, "2")  # a new app of a model the ledger has: the name is not new
    assert more.exit_code == 0, more.output
    if unicodedata.category(WIRELESS) == "Cn":
        new = run_cli("get", f"switch{WIRELESS}", "1")
        assert new.exit_code == 1 and "does not assign" in new.stderr


@pytest.mark.usefixtures("new_ledger")
def test_a_pool_for_a_look_alike_is_refused(run_cli: RunCli, ledger_path: Path) -> None:
    assert run_cli("get", "model_a", "1").exit_code == 0
    before = ledger_path.read_bytes()
    result = run_cli("pool", "add", "m\u03bfdel_a", "--pairs", "50-60")
    assert result.exit_code == 1, result.output
    assert_one_error_line(result.stderr)
    assert ledger_path.read_bytes() == before
    assert run_cli("--allow-confusable", "pool", "add", "m\u03bfdel_a", "--pairs", "50-60").exit_code == 0
