"""The read-only fast path: find one key's pair without pydantic or a lock.

``portalloc get`` of a key that already has a pair is the most common call there is,
and most of its cost would be imports. This module reads the file the way the full
parser does (``files.read_regular_file``, strict UTF-8, ``strictjson.parse_json`` with
its refusal of repeated names) and checks the whole document against the same rules
as ``portalloc.models`` (version, every policy field, every row), written out here in
plain Python. The rule it keeps: it answers only when ``ledger.parse_ledger`` would
accept the file and give the same first row for the key; anything it does not know
(a policy field added later, say) returns ``None`` and the caller takes the full path
(``PortAllocationService``), which reports what is wrong. ``tests/test_lookup.py``
pins that equivalence with generated documents.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from portalloc.errors import PortallocError
from portalloc.files import read_regular_file
from portalloc.keys import check_app_num, check_model_name
from portalloc.limits import LEDGER_VERSION, MAX_LEDGER_BYTES, MAX_PORT, MIN_PORT
from portalloc.strictjson import parse_json


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
        data = read_regular_file(path, "ledger", MAX_LEDGER_BYTES).data
        raw = parse_json(data.decode("utf-8"))
    except (OSError, PortallocError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(raw, dict) or not raw.keys() <= {"version", "policy", "allocations"}:
        return None
    if not _is_int(raw.get("version", LEDGER_VERSION), LEDGER_VERSION, LEDGER_VERSION):
        return None
    policy = raw.get("policy", {})
    rows = raw.get("allocations", [])
    if not (_valid_policy(policy) and isinstance(rows, list)):
        return None
    found: Hit | None = None
    for row in rows:
        # Every row is checked, not just up to the match: one bad row makes the file invalid.
        key = _valid_row(row)
        if key is None:
            return None
        if found is None and key == (model, app_num):
            found = Hit(row["backend"], row["frontend"], policy.get("probe", True))
    return found


def _valid_policy(policy: object) -> bool:
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


def _valid_row(row: object) -> tuple[str, int] | None:
    """The row's key if it is a valid allocation, else ``None``."""
    if not isinstance(row, dict) or row.keys() != _ROW_FIELDS:
        return None
    model, app_num, backend, frontend = row["model"], row["app_num"], row["backend"], row["frontend"]
    if not (_is_int(backend, MIN_PORT, MAX_PORT) and _is_int(frontend, MIN_PORT, MAX_PORT) and backend != frontend):
        return None
    if type(model) is not str or type(app_num) is not int:
        return None
    try:
        # The full parser stores a model in NFC, so an NFD row is found by its NFC name, as there.
        model = check_model_name(model)
        check_app_num(app_num)
    except PortallocError:
        return None
    return model, app_num


def _is_int(value: object, low: int, high: int | None) -> bool:
    # type() is int, not isinstance: JSON true is a bool, and pydantic's strict mode refuses it as an int.
    return type(value) is int and low <= value and (high is None or value <= high)
