"""The read-only fast path: find one key's pair without pydantic or a lock.

``portalloc get`` of a key that already has a pair is the most common call there is,
and most of its cost would be imports. This module reads the file the way the full
parser does (``files.read_regular_file``, strict UTF-8, ``strictjson.parse_json`` with
its refusal of repeated names) and checks the whole document against the same rules
as ``portalloc.core.models`` (version, every policy field, every row), written out here in
plain Python. The rule it keeps: it answers only when ``ledger.parse_ledger`` would
accept the file and give the same first row for the key; anything it does not know
(a policy field added later, say) returns ``None`` and the caller takes the full path
(``PortAllocationService``), which reports what is wrong. ``tests/storage/test_lookup.py``
pins that equivalence with generated documents.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple, TypeGuard, cast

from portalloc.core.keys import check_app_num, check_model_name
from portalloc.core.limits import LEDGER_VERSION, MAX_LEDGER_BYTES, MAX_PORT, MIN_PORT
from portalloc.errors import PortallocError
from portalloc.storage.files import read_regular_file
from portalloc.storage.strictjson import parse_json


class Hit(NamedTuple):
    """A pair found by ``find_pair``, and whether the ledger's policy lets this machine be probed."""

    backend: int
    frontend: int
    probe: bool

    @property
    def ports(self) -> tuple[int, int]:
        """``(backend, frontend)``."""
        return self.backend, self.frontend


#: ``PortPolicy``'s fields: which are ports, which are flags.
_POLICY_PORTS = frozenset({"backend_start", "frontend_start", "max_port"})
_POLICY_FLAGS = frozenset({"skip_bad_ports", "probe"})
_ROW_FIELDS = frozenset({"model", "app_num", "backend", "frontend"})


def find_pair(path: Path, model: str, app_num: int) -> Hit | None:
    """The pair of ``(model, app_num)`` in the ledger at ``path``, or ``None`` (let the full path decide)."""
    try:
        text = read_regular_file(path, "ledger", MAX_LEDGER_BYTES).data.decode("utf-8")
    except (OSError, PortallocError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    document = canonical_document(text)
    if document is None:
        try:
            document = _document(parse_json(text))
        except ValueError:
            return None
    if document is None:
        return None
    version, policy, rows = document
    if not (_is_int(version, LEDGER_VERSION, LEDGER_VERSION) and _valid_policy(policy)):
        return None
    found: Hit | None = None
    names: dict[str, str | None] = {}  # each distinct model name is checked once
    for row in rows:
        # Every row is checked, not just up to the match: one bad row makes the file invalid.
        valid = _valid_row(row, names)
        if valid is None:
            return None
        if found is None and valid[:2] == (model, app_num):
            found = Hit(valid[2], valid[3], policy.get("probe", True))
    return found


#: A row as ``ledger.dump_ledger`` writes it, and nothing else: a model without escapes or
#: control characters (its text is then its value) and plain JSON integers. The pattern has
#: no room for a second name, so a line it matches cannot repeat one.
_INT = r"(-?(?:0|[1-9][0-9]{0,8}))"
_CANONICAL_ROW = re.compile(
    rf'    \{{"model": "([^"\\\x00-\x1f]*)", "app_num": {_INT}, "backend": {_INT}, "frontend": {_INT}\}}'
)
_CANONICAL_HEAD = re.compile(rf'\{{\n  "version": {_INT},\n  "policy": (\{{[^\n]*\}}),\n  "allocations": ')
_Row = tuple[object, object, object, object]


def canonical_document(text: str) -> tuple[object, object, list[_Row]] | None:
    """``(version, policy, rows)`` of a ledger in the canonical layout, read line by line; ``None`` for any other text.

    Parsing the whole file with the duplicate-refusing JSON parser costs a Python call
    per object; the canonical layout is recognised with one regular expression per row
    instead. What it accepts, it reads exactly as ``strictjson.parse_json`` would (the
    policy, one short line, goes through ``parse_json`` itself); anything else goes to
    the full parse. ``tests/storage/test_lookup.py`` pins that equivalence.
    """
    head = _CANONICAL_HEAD.match(text)
    if head is None:
        return None
    try:
        policy = parse_json(head[2])
    except ValueError:
        return None
    body = text[head.end() :]
    if body == "[]\n}\n":
        return int(head[1]), policy, []
    if not (body.startswith("[\n") and body.endswith("\n  ]\n}\n")) or len(body) < 10:
        return None
    rows: list[_Row] = []
    for line in body[2:-7].split(",\n"):
        match = _CANONICAL_ROW.fullmatch(line)
        if match is None:
            return None
        name, number, backend, frontend = match.groups()
        rows.append((name, int(number), int(backend), int(frontend)))
    return int(head[1]), policy, rows


def _document(raw: object) -> tuple[object, object, list[_Row]] | None:
    """``(version, policy, rows)`` of a parsed JSON document shaped like a ledger, else ``None``."""
    if not isinstance(raw, dict) or not raw.keys() <= {"version", "policy", "allocations"}:
        return None
    rows = raw.get("allocations", [])
    if not isinstance(rows, list):
        return None
    found: list[_Row] = []
    for row in rows:
        if not isinstance(row, dict) or row.keys() != _ROW_FIELDS:
            return None
        found.append((row["model"], row["app_num"], row["backend"], row["frontend"]))
    return raw.get("version", LEDGER_VERSION), raw.get("policy", {}), found


def _valid_policy(policy: object) -> TypeGuard[dict[str, Any]]:
    if not isinstance(policy, dict) or not policy.keys() <= _POLICY_PORTS | _POLICY_FLAGS | {"step"}:
        return False
    if not all(_is_int(policy.get(name, MIN_PORT), MIN_PORT, MAX_PORT) for name in _POLICY_PORTS):
        return False
    if not all(type(policy.get(name, True)) is bool for name in _POLICY_FLAGS):
        return False
    if not _is_int(policy.get("step", 2), 1, None):
        return False
    backend, frontend = policy.get("backend_start", 5001), policy.get("frontend_start", 8001)
    return bool(backend < frontend <= policy.get("max_port", MAX_PORT))


def _valid_row(row: _Row, names: dict[str, str | None]) -> tuple[str, int, int, int] | None:
    """The row (its model in NFC) if it is a valid allocation, else ``None``; ``names`` caches checked models."""
    model, app_num, backend, frontend = row
    if not (_is_int(backend, MIN_PORT, MAX_PORT) and _is_int(frontend, MIN_PORT, MAX_PORT) and backend != frontend):
        return None
    if type(model) is not str or type(app_num) is not int:
        return None
    try:
        check_app_num(app_num)
    except PortallocError:
        return None
    if model not in names:
        try:
            # The full parser stores a model in NFC, so an NFD row is found by its NFC name, as there.
            names[model] = check_model_name(model)
        except PortallocError:
            names[model] = None
    checked = names[model]
    return None if checked is None else (checked, app_num, cast("int", backend), cast("int", frontend))


def _is_int(value: object, low: int, high: int | None) -> bool:
    # type() is int, not isinstance: JSON true is a bool, and pydantic's strict mode refuses it as an int.
    return type(value) is int and low <= value and (high is None or value <= high)
