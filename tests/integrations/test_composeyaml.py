"""Reading a compose file's YAML as compose does, bounded (``portalloc.integrations.composeyaml``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portalloc.errors import ComposeFileError
from portalloc.integrations.composeyaml import MAX_NODES, RESET, OverrideList, load_documents, merge, quote


def load(tmp_path: Path, text: str) -> tuple[dict[str, object], list[str]]:
    path = tmp_path / "compose.yaml"
    path.write_text(text)
    return load_documents(path)


def test_yaml_1_2_scalars_as_compose_reads_them(tmp_path: Path) -> None:
    document, problems = load(tmp_path, "a: [22:22, yes, no, on, 0x50, 0o17, 1.5, true, ~]\n")
    assert document["a"] == ["22:22", "yes", "no", "on", 80, 15, 1.5, True, None]
    assert problems == []


def test_duplicate_keys_are_reported_with_their_lines(tmp_path: Path) -> None:
    _, problems = load(tmp_path, "services:\n  web:\n    image: a\n    image: b\n")
    assert problems == ["line 4: mapping key 'image' already defined at line 3"]


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    document, problems = load(tmp_path, "x: &x {a: 1}\ny: &y {b: 2}\nz:\n  <<: *x\n  <<: *y\n")
    assert problems == [] and document["z"] == {"a": 1, "b": 2}


def test_tags(tmp_path: Path) -> None:
    document, _ = load(tmp_path, "x:\n  a: !reset [1]\nb: !override [2]\nc: !whatever {d: 3}\n")
    assert document["x"] == {"a": RESET}  # dropped when merged over a base
    assert isinstance(document["b"], OverrideList) and document["b"] == [2]
    assert document["c"] == {"d": 3}


def test_documents_merge_like_override_files(tmp_path: Path) -> None:
    text = "services:\n  a: {image: x, ports: ['1:1']}\n---\nservices:\n  a: {ports: ['2:2']}\n  b: {image: y}\n"
    document, _ = load(tmp_path, text)
    assert document == {"services": {"a": {"image": "x", "ports": ["1:1", "2:2"]}, "b": {"image": "y"}}}


def test_merge_rules() -> None:
    base = {"ports": ["1:1"], "env": {"A": "1"}, "image": "x"}
    assert merge(base, {"ports": ["1:1", "2:2"], "env": {"B": "2"}, "image": "y"}) == {
        "ports": ["1:1", "2:2"],
        "env": {"A": "1", "B": "2"},
        "image": "y",
    }
    assert merge(base, {"ports": RESET}) == {"env": {"A": "1"}, "image": "x"}
    assert merge(base, {"ports": OverrideList(["3:3"])})["ports"] == ["3:3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: " + "[" * 65 + "]" * 65 + "\n", "nests deeper than 64 levels"),
        (
            "a: &a [1, 2]\n"
            + "".join(
                f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}]\n"
                for i in range(20)
            ),
            f"expands to more than {MAX_NODES:,} values",
        ),
        ("x-loop: &a [1, *a]\nservices: {}\n", "has the alias \\*a inside its own anchor &a"),
        ("x: &m {b: *m}\n", "has the alias \\*m inside its own anchor &m"),
        ("", "is empty"),
        ("- a\n", "a document in it is not a mapping"),
        ("a: [\n", "is not valid YAML"),
    ],
    ids=["deep", "doubling aliases", "self-alias list", "self-alias map", "empty", "list", "broken"],
)
def test_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ComposeFileError, match=message):
        load(tmp_path, text)


def test_64_levels_and_a_large_flat_file_are_fine(tmp_path: Path) -> None:
    document, _ = load(tmp_path, "a: " + "[" * 63 + "]" * 63 + "\n")
    assert isinstance(document["a"], list)
    document, _ = load(tmp_path, "a: [" + ", ".join(["1"] * 100_000) + "]\n")
    assert len(document["a"]) == 100_000  # type: ignore[arg-type]


def test_quote_is_short() -> None:
    assert quote("x" * 1000) == "'" + "x" * 58 + "…"
    assert quote([1, 2]) == "[1, 2]"
    assert quote([[1]] * 20) == "<a list of 20 items>"
