"""The package's public API: what ``import portalloc`` offers, lazily, and what ``help`` and ``dir`` show."""

from __future__ import annotations

import inspect
import json
import pydoc
import re
import subprocess
import sys
import typing
from pathlib import Path

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


def test_dir_shows_the_public_names_only() -> None:
    assert dir(portalloc) == sorted(portalloc.__all__)
    assert not [name for name in dir(portalloc) if name.startswith("_") and name != "__version__"]


def test_the_help_signature_is_the_real_one(tmp_path: Path) -> None:
    """What ``help(portalloc)`` shows for the service can be typed as it is shown."""
    shown = re.search(r"PortAllocationService\(([^)]*)\)", portalloc.__doc__ or "", re.S)
    assert shown is not None
    named = {part.split("=")[0].strip(" *\n") for part in shown.group(1).split(",")} - {""}
    assert named == set(inspect.signature(portalloc.PortAllocationService).parameters)
    service = portalloc.PortAllocationService(tmp_path / "portalloc.json", config_file=None, probe=False)
    assert service.get_or_allocate_ports("a", 1).ports == (5001, 8001)


def _portalloc_classes(annotation: object) -> set[type]:
    """The portalloc classes an annotation names, and those their fields name in turn."""
    found: set[type] = set()
    pending = [annotation]
    while pending:
        current = pending.pop()
        pending += typing.get_args(current)
        if not inspect.isclass(current) or not current.__module__.startswith("portalloc.") or current in found:
            continue
        found.add(current)
        fields = getattr(current, "__annotations__", {})
        hints = typing.get_type_hints(current, localns=_PUBLIC) if fields else {}
        pending += [hint for name, hint in hints.items() if not name.startswith("_")]  # private caches are not API
    return found


_PUBLIC = {name: getattr(portalloc, name) for name in portalloc.__all__}


def test_every_type_a_public_method_takes_or_returns_is_importable_from_portalloc() -> None:
    seen: set[type] = set()
    for name, method in inspect.getmembers(portalloc.PortAllocationService, inspect.isfunction):
        if not name.startswith("_"):
            for annotation in typing.get_type_hints(method, localns=_PUBLIC).values():
                seen |= _portalloc_classes(annotation)
    assert {portalloc.Pool, portalloc.ImportRow, portalloc.ImportReport, portalloc.Claim} <= seen
    public = set(_PUBLIC.values())
    for cls in seen:
        assert cls in public, f"{cls.__module__}.{cls.__name__} is not importable from portalloc"


def test_a_pair_unpacks_as_backend_frontend() -> None:
    pair = portalloc.PortPair(model="a", app_num=1, backend=5001, frontend=8001)
    backend, frontend = pair
    assert (backend, frontend) == (5001, 8001) == tuple(pair) == pair.ports
    assert pair.model_dump() == {"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: portalloc.PortPair(model="a", app_num=0, backend=5001, frontend=8001), "invalid PortPair: app_num"),
        (lambda: portalloc.PortPair(model="a", app_num=1, backend=80, frontend=8001), "invalid PortPair: backend"),
        (lambda: portalloc.PortPolicy(step=0), "invalid PortPolicy: step"),
        (lambda: portalloc.PortPolicy(backend_start=9000, frontend_start=8000), "invalid PortPolicy: frontend_start"),
        (lambda: portalloc.Pool(model="m", first=5, last=1), "invalid Pool: pool of m"),
    ],
)
def test_invalid_values_raise_a_portalloc_error_with_one_line(build: typing.Callable[[], object], message: str) -> None:
    with pytest.raises(portalloc.InvalidValue) as caught:
        build()
    assert isinstance(caught.value, portalloc.PortallocError) and isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
