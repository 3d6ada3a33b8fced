"""Keys: what a model name and an app number may be, and where an app lives on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from portalloc.errors import InvalidKey
from portalloc.keys import app_dir, check_app_num, check_model_name, model_dir_name


@pytest.mark.parametrize("model", ["model_a", "anthropic_claude-3.7-sonnet", "openai/gpt-4o", "modèle ü", "x" * 200])
def test_good_model_names(model: str) -> None:
    assert check_model_name(model) == model


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("", "must not be empty"),
        ("  \t", "must not be empty"),
        ("x" * 201, "201 characters long"),
        (" model", "starts or ends with whitespace"),
        ("model\n", "starts or ends with whitespace"),
        ("mo\x00del", "control character"),
        ("mo\u200bdel", "control character"),  # zero-width space: invisible, so a second key by accident
        (5, "must be a string"),
    ],
)
def test_bad_model_names(model: str, message: str) -> None:
    with pytest.raises(InvalidKey, match=message):
        check_model_name(model)


@pytest.mark.parametrize("app_num", [0, -1, 1_000_001, True, 1.0, "1"])
def test_bad_app_nums(app_num: object) -> None:
    with pytest.raises(InvalidKey):
        check_app_num(app_num)  # type: ignore[arg-type]


def test_app_num_bounds() -> None:
    assert check_app_num(1) == 1
    assert check_app_num(1_000_000) == 1_000_000


@pytest.mark.parametrize(
    ("model", "directory"),
    [
        ("model_a", "model_a"),
        ("openai/gpt-4o", "openai_gpt-4o"),
        ("../x", ".._x"),
        ("..", "__"),
        (".", "_"),
        ("a b:c\\d", "a_b_c_d"),
        ("modèle", "mod_le"),
    ],
)
def test_model_dir_name_is_one_safe_component(model: str, directory: str) -> None:
    assert model_dir_name(model) == directory
    root = Path("/apps")
    path = app_dir(root, model, 3)
    assert path.parent.parent == root
    assert path.name == "app3"
