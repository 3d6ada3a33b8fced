"""How a pair is printed: ``get``'s three forms (a line, ``--field``, ``--json``) and the JSON object of a pair.

Click-free and pydantic-free: the quick front door (``cli.quick``) prints ``get``'s answer
with the very function the ``get`` command prints it with. A report's shape lives in
``portalloc/reports.py``; ``tests/test_reports.py`` pins the objects built here to it.
"""

from __future__ import annotations

import json
from typing import Any


def pair_json(model: str, app_num: int, backend: int, frontend: int) -> dict[str, Any]:
    """The JSON object of one ledger row, as ``reports.Allocation`` dumps it, built without pydantic."""
    return {"model": model, "app_num": app_num, "backend": backend, "frontend": frontend}


def used_pair_json(model: str, app_num: int, backend: int, frontend: int, worktree: str | None) -> dict[str, Any]:
    """The JSON object of a pair in use, as ``reports.UsedPair`` dumps it, built without pydantic."""
    return {**pair_json(model, app_num, backend, frontend), "worktree": worktree}


def json_text(value: Any) -> str:
    """``value`` as every ``--json`` prints JSON: indented, non-ASCII text as it is."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def get_text(model: str, app_num: int, used: tuple[int, int, str | None], *, as_json: bool, field: str | None) -> str:
    """What ``get`` prints for the pair ``used`` (backend, frontend, worktree): the line, one port, or JSON."""
    backend, frontend, worktree = used
    if field is not None:
        return str(backend if field == "backend" else frontend)
    if as_json:
        return json_text(used_pair_json(model, app_num, backend, frontend, worktree))
    where = "" if worktree is None else f" (worktree {worktree})"
    return f"{model}/{app_num}: backend {backend}, frontend {frontend}{where}"
