"""The package's public API: what ``import portalloc`` offers, lazily, and what ``help`` and ``dir`` show."""

from __future__ import annotations

import inspect
import json
import pydoc
import subprocess
import sys

import pytest

import portalloc
import portalloc.errors
from tests.conftest import subprocess_env


def test_every_public_name_resolves_and_is_listed_by_dir() -> None:
    assert {"Conflict", "Usage", "PortReport", "PortPair", "PortAllocationService"} <= set(portalloc.__all__)
    for name in portalloc.__all__:
        assert getattr(portalloc, name) is not None
        assert name in dir(portalloc)


def test_every_error_class_is_importable_from_portalloc() -> None:
    errors = {
        name
        for name, value in vars(portalloc.errors).items()
        if inspect.isclass(value) and issubclass(value, portalloc.errors.PortallocError)
    }
    assert errors <= set(portalloc.__all__)
    for name in errors:
        assert getattr(portalloc, name) is getattr(portalloc.errors, name)


def test_help_shows_the_api() -> None:
    text = pydoc.render_doc(portalloc, renderer=pydoc.plaintext)
    for name in ("get_or_allocate_ports", "PortAllocationService", "Conflict", "Usage", "PortReport", "NoFreePair"):
        assert name in text


def test_port_pair_reprs_as_a_port_pair() -> None:
    pair = portalloc.PortPair(model="a", app_num=1, backend=5001, frontend=8001)
    assert repr(pair) == "PortPair(model='a', app_num=1, backend=5001, frontend=8001)"


def test_import_and_dir_stay_light() -> None:
    probe = "import json, sys, portalloc; dir(portalloc); print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=subprocess_env())
    modules = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert not modules & {"pydantic", "pydantic_core", "filelock", "click"}


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        portalloc.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_every_error_class_has_its_own_stable_code() -> None:
    errors = [
        value
        for value in vars(portalloc.errors).values()
        if inspect.isclass(value) and issubclass(value, portalloc.errors.PortallocError)
    ]
    codes = [error.code for error in errors]
    assert len(set(codes)) == len(codes), sorted(codes)


def test_the_type_checking_imports_are_the_public_mapping() -> None:
    """``_PUBLIC`` is the one list; the imports type checkers read must name the same things in the same modules."""
    import ast

    tree = ast.parse(inspect.getsource(portalloc))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    imported = {
        alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    assert imported == portalloc._PUBLIC
    assert portalloc.__all__ == ["__version__", *portalloc._PUBLIC]
