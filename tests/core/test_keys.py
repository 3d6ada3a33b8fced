"""Keys: what a model name and an app number may be, and where an app lives on disk."""

from __future__ import annotations

import itertools
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portalloc.core.keys import (
    MODEL_NAME_PATTERN,
    app_dir,
    check_app_num,
    check_model_name,
    key_of_app_dir,
    model_dir_name,
)
from portalloc.errors import InvalidKey


@pytest.mark.parametrize(
    "model", ["model_a", "anthropic_claude-3.7-sonnet", "openai/gpt-4o", "modèle ü", "x" * 200, "モデル", "a\u0301"]
)
def test_good_model_names(model: str) -> None:
    assert check_model_name(model) == unicodedata.normalize("NFC", model)


def test_nfc_and_nfd_spellings_are_one_model() -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    assert nfc != nfd
    assert check_model_name(nfd) == check_model_name(nfc) == nfc
    assert model_dir_name(nfd) == model_dir_name(nfc) == nfc


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("", "must not be empty"),
        ("  \t", "must not be empty"),
        ("x" * 201, "201 characters long"),
        (" model", "starts or ends with whitespace"),
        ("model\n", "starts or ends with whitespace"),
        ("mo\x00del", "control character"),
        ("a\x1b[31mb", "control character"),
        ("mo\u200bdel", "invisible character"),  # zero-width space: a second key by accident
        ("a\u2067b", "invisible character"),  # bidi isolate: reorders what a reader sees
        ("a\u00adb", "invisible character"),  # soft hyphen
        ("a\ufe0fb", "invisible character U\\+FE0F"),  # variation selector (default-ignorable, Mn)
        ("a\u3164", "invisible character U\\+3164"),  # Hangul filler (default-ignorable, Lo)
        ("a\u034fb", "invisible character U\\+034F"),  # combining grapheme joiner
        ("a\u00a0b", "space character U\\+00A0"),  # no-break space looks like a space
        ("a\u2003b", "space character U\\+2003"),
        ("\u0301abc", "combining mark U\\+0301 with no letter"),
        ("a/\u0301b", "combining mark U\\+0301 with no letter"),
        ("a \u20ddb", "combining mark U\\+20DD with no letter"),
        ("caf\udce9", "not valid UTF-8 text"),  # what the byte 0xe9 on a UTF-8 command line becomes
        ("a\ud800b", "not valid UTF-8 text"),
        ("a\ufffe", "noncharacter U\\+FFFE"),  # never assigned by any Unicode version
        ("a\ufdd0", "noncharacter U\\+FDD0"),
        ("../x", "path segment"),
        ("a/./b", "path segment"),
        (5, "must be a string"),
    ],
)
def test_bad_model_names(model: str, message: str) -> None:
    with pytest.raises(InvalidKey, match=message):
        check_model_name(model)


def test_a_code_point_unassigned_here_is_a_valid_stored_name() -> None:
    """A newer Python may assign it (its ledger must load here); a new name is checked in ``core/names.py``."""
    assert check_model_name("a\u0378") == "a\u0378"


def test_length_is_counted_after_nfc() -> None:
    assert check_model_name("e\u0301" * 200) == "\u00e9" * 200
    with pytest.raises(InvalidKey, match="201 characters"):
        check_model_name("\u00e9" * 201)


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
        ("openai/gpt-4o", "openai%2Fgpt-4o"),
        ("a/b", "a%2Fb"),
        ("a_b", "a_b"),
        ("a:b", "a%3Ab"),
        ("a b", "a%20b"),
        ("a%2Fb", "a%252Fb"),
        ("a\\b", "a%5Cb"),
        ("modèle", "modèle"),
        ("モデル/v1", "モデル%2Fv1"),
        ("...", "%2E.%2E"),
        (".hidden", "%2Ehidden"),
        ("v1.", "v1%2E"),
    ],
)
def test_model_dir_name_examples(model: str, directory: str) -> None:
    assert model_dir_name(model) == directory
    path = app_dir(Path("/apps"), model, 3)
    assert path == Path("/apps", directory, "app3")


def test_names_that_used_to_share_a_directory_do_not() -> None:
    models = ["a/b", "a_b", "a:b", "a b", "a\\b", "é1", "ü1", "中1"]
    assert len({model_dir_name(m) for m in models}) == len(models)


def test_model_dir_name_refuses_what_is_not_a_model() -> None:
    for model in ("..", ".", "../etc", "a\x00"):
        with pytest.raises(InvalidKey):
            model_dir_name(model)


def _valid_model(text: str) -> str | None:
    try:
        return check_model_name(text)
    except InvalidKey:
        return None


models = st.text(min_size=1, max_size=40).map(_valid_model).filter(lambda m: m is not None)


@given(models)
def test_model_dir_name_is_one_reversible_component(model: str) -> None:
    directory = model_dir_name(model)
    # unquote reverses it, so distinct models always get distinct directories.
    assert unquote(directory) == model
    assert "/" not in directory and "\\" not in directory and "\x00" not in directory
    assert directory not in (".", "..") and not directory.startswith(".") and not directory.endswith(".")
    assert Path("/apps", directory).parent == Path("/apps")


@given(models, models)
def test_distinct_models_never_share_a_directory(a: str, b: str) -> None:
    assert (model_dir_name(a) == model_dir_name(b)) == (a == b)


@given(st.text(max_size=30))
def test_check_model_name_is_idempotent_and_nfc(text: str) -> None:
    model = _valid_model(text)
    if model is not None:
        assert unicodedata.is_normalized("NFC", model)
        assert check_model_name(model) == model
        assert _valid_model(unicodedata.normalize("NFD", text)) == model


@given(models, st.integers(min_value=1, max_value=1_000_000))
def test_key_of_app_dir_reads_app_dir_backwards(model: str, app_num: int) -> None:
    assert key_of_app_dir(app_dir(Path("/apps"), model, app_num)) == (model, app_num)


@pytest.mark.parametrize(
    ("directory", "message"),
    [
        ("/apps/openai%2fgpt-4o/app1", "no model name is written 'openai%2fgpt-4o'"),  # lower-case hex
        ("/apps/a b/app1", "no model name is written 'a b'"),  # a space is written %20
        ("/apps/a%ZZ/app1", "no model name is written"),
        ("/apps/%C3/app1", "no model name is written"),  # half a UTF-8 character
        ("/apps/model_a/app01", "not an app directory"),
        ("/apps/model_a/app0", "not an app directory"),
        ("/apps/model_a", "not an app directory"),
        ("/app1", "no model name is written ''"),
        ("/apps/model_a/app1000001", "app_num"),
    ],
)
def test_key_of_app_dir_refuses_what_app_dir_never_makes(directory: str, message: str) -> None:
    with pytest.raises(InvalidKey, match=re.escape(message)):
        key_of_app_dir(Path(directory))


def _accepted(name: str) -> bool:
    try:
        check_model_name(name)
    except InvalidKey:
        return False
    return True


def test_the_documented_pattern_is_the_check_for_ascii_names() -> None:
    # Every name of up to 5 characters over the characters the rules are about: the OpenAPI
    # document's pattern and the check agree on each (fuzzers trust the pattern).
    pattern = re.compile(MODEL_NAME_PATTERN)
    alphabet = "a. /\\\t\x01"
    for length in range(1, 6):
        for chars in itertools.product(alphabet, repeat=length):
            name = "".join(chars)
            assert _accepted(name) == bool(pattern.fullmatch(name)), repr(name)


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), min_size=1, max_size=30))
def test_the_documented_pattern_agrees_on_any_ascii_name(name: str) -> None:
    assert _accepted(name) == bool(re.fullmatch(MODEL_NAME_PATTERN, name))
