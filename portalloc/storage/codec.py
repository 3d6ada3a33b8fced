"""The ledger's layout, in one place: a ``Ledger`` to its bytes and bytes back to a ``Ledger``.

Every ledger portalloc writes has the canonical layout::

    {
      "version": 1,
      "policy": {"backend_start": 5001, "frontend_start": 8001, "step": 2, ...},
      "allocations": [
        {"model": "model_a", "app_num": 1, "backend": 5001, "frontend": 8001},
        {"model": "model_b", "app_num": 1, "backend": 5003, "frontend": 8003}
      ]
    }

one allocation per line, sorted by ``(model, app_num)``: an allocation is one line of a
git diff, and two branches that allocate different apps touch different lines. The same
ledger always gives the same bytes. Every reader is strict (``strictjson``: a name given
twice in one object is refused, as a careless merge can write it):

* ``parse_ledger`` reads any JSON layout and validates it: a file the fast reader accepts
  becomes models without a second check (``_built``), any other is validated by pydantic
  (``validate_ledger``).
* ``parse_known_rows`` is the writer's re-read under the lock: in the canonical layout it
  validates only the lines it did not write itself.
* ``read_document`` and ``read_checked`` are the fast reader (``get`` of an existing key,
  shell completion): the canonical layout by one regular expression per row, any other
  by ``parse_json``, then the models' rules written out in plain Python, so that it
  answers only where ``parse_ledger`` would answer the same (``tests/storage/test_codec.py``
  pins that with generated documents).

The fast reader must not import pydantic (``tests/cli/test_cli_imports.py``), so the
field names are plain constants here and the models are imported by the functions that
need them, on first use; ``tests/storage/test_codec.py`` asserts that the constants are
the models' fields, so a field added to a model and not here fails the suite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from portalloc.core.keys import check_app_num, check_model_name
from portalloc.core.limits import LATEST_LEDGER_VERSION, LEDGER_VERSION, MAX_PORT, MIN_PORT, SEPARATE_WORKTREES_VERSION
from portalloc.core.pairs import merge_ranges, pair_count
from portalloc.core.rowdiff import common_ends
from portalloc.errors import LedgerCorrupt, PortallocError
from portalloc.storage.strictjson import parse_json, reject_duplicate_names

if TYPE_CHECKING:
    from portalloc.core import shapes
    from portalloc.core.models import Ledger
    from portalloc.core.shapes import LedgerShape, PolicyShape

# --- the layout -------------------------------------------------------------------------

#: ``Ledger``'s fields, in the order the file spells them.
LEDGER_FIELDS = ("version", "policy", "allocations")
#: ``Allocation``'s fields, in the order every row spells them. ``model`` is the one string.
ROW_FIELDS = ("model", "app_num", "backend", "frontend")
#: ``PortPolicy``'s plain fields and their defaults, in the order the file spells them.
POLICY_DEFAULTS: Mapping[str, int | bool | str] = {
    "backend_start": 5001,
    "frontend_start": 8001,
    "step": 2,
    "max_port": MAX_PORT,
    "skip_bad_ports": True,
    "probe": True,
    "worktrees": "shared",
}
#: ``PortPolicy``'s list fields (reserved ranges, per-model pools), empty by default.
POLICY_LISTS = ("reserved", "pools")
#: ``Pool``'s fields and the defaults of those that have one, in the order the file spells them.
POOL_FIELDS = ("model", "first", "last", "overflow")
POOL_DEFAULTS: Mapping[str, str] = {"overflow": "shared"}
#: What a full pool's model gets next: the first is the default.
POOL_OVERFLOWS = ("shared", "fail")
#: Which plain policy fields are ports (the others are the step and flags).
POLICY_PORTS = ("backend_start", "frontend_start", "max_port")
POLICY_FLAGS = tuple(name for name, value in POLICY_DEFAULTS.items() if type(value) is bool)
#: The policy fields that name one of a few choices, and the choices.
POLICY_CHOICES: Mapping[str, tuple[str, ...]] = {"worktrees": ("shared", "separate")}
#: The policy fields whose values the fast reader checks (``_checked_policy``). A field added
#: to ``POLICY_DEFAULTS`` and not checked there sends every file that spells it to the models.
_CHECKED_POLICY_FIELDS = frozenset({*POLICY_PORTS, *POLICY_FLAGS, "step", *POLICY_CHOICES, *POLICY_LISTS})
#: Policy fields written only when they differ from their default: ledgers that keep the
#: default stay byte for byte what they were, and readable by a portalloc that predates them.
_WRITTEN_WHEN_SET = ("probe", *POLICY_CHOICES, *POLICY_LISTS)


def _head_layout(version: str, policy: str, literal: Callable[[str], str] = str) -> str:
    """The file up to its allocations, with ``version`` and ``policy`` spelled as given; ``literal`` quotes the rest."""
    values = {"version": version, "policy": policy, "allocations": ""}
    return literal("{\n") + literal(",\n").join(literal(f'  "{name}": ') + values[name] for name in LEDGER_FIELDS)


def _row_layout(string: str, integer: str, literal: Callable[[str], str] = str) -> str:
    """One allocation line, with its string and its integers spelled as given; ``literal`` quotes the rest."""
    fields = (literal(f'"{name}": ') + (string if name == "model" else integer) for name in ROW_FIELDS)
    return literal("    {") + literal(", ").join(fields) + literal("}")


#: What follows the head: an empty list, or the rows between these.
_EMPTY = "[]\n}\n"
_OPEN = "[\n"
_SEPARATOR = ",\n"
_FOOTER = "\n  ]\n}\n"
# %-formats: the braces of the layout are plain characters there.
_HEAD_FORMAT = _head_layout("%d", "%s")
_ROW_FORMAT = _row_layout("%s", "%d")


# --- writing ----------------------------------------------------------------------------


def allocation_line(allocation: shapes.Row) -> str:
    """The canonical line of one allocation (without its separator)."""
    # Exactly what ``json.dumps({...}, ensure_ascii=False)`` gives, at a fifth of the
    # cost: the same string encoder, and ``%d`` spells an int the way json does.
    return _ROW_FORMAT % (
        encode_basestring(allocation.model),
        allocation.app_num,
        allocation.backend,
        allocation.frontend,
    )


def key_text(model: str, app_num: int) -> str:
    """How a key is spelled in its canonical line (``"model": "m", "app_num": 1,``): what git's pickaxe looks for."""
    line = _ROW_FORMAT % (encode_basestring(model), app_num, 0, 0)
    return line[len("    {") : line.index(f', "{ROW_FIELDS[2]}"') + 1]


def policy_fields(policy: PolicyShape) -> dict[str, Any]:
    """``policy.model_dump()``, read off the fields: a dump would build pydantic's serializer, a write needs none."""
    fields: dict[str, Any] = {name: getattr(policy, name) for name in (*POLICY_DEFAULTS, *POLICY_LISTS)}
    fields["reserved"] = [list(port_range) for port_range in policy.reserved]
    fields["pools"] = [{name: getattr(pool, name) for name in POOL_FIELDS} for pool in policy.pools]
    return fields


def _head(ledger: LedgerShape) -> str:
    fields = policy_fields(ledger.policy)
    for name in _WRITTEN_WHEN_SET:
        if fields[name] == POLICY_DEFAULTS.get(name, []):
            del fields[name]
    # The version follows from the policy (``PortPolicy.ledger_version``), never from what was read.
    return _HEAD_FORMAT % (ledger.policy.ledger_version, json.dumps(fields))


def _canonical(ledger: LedgerShape, lines: list[str]) -> bytes:
    body = _OPEN + _SEPARATOR.join(lines) + _FOOTER if lines else _EMPTY
    return (_head(ledger) + body).encode("utf-8")


def dump_ledger(ledger: LedgerShape) -> bytes:
    """The canonical bytes of a ledger: one allocation per line, sorted, trailing newline."""
    return _canonical(ledger, list(map(allocation_line, ledger.in_key_order())))


def is_canonical(data: bytes, ledger: LedgerShape) -> bool:
    """Whether ``data`` (the bytes ``ledger`` was parsed from) are its canonical bytes.

    CRLF line ends count as LF: with ``core.autocrlf=true`` (Git for Windows' default)
    git checks the ledger out with CRLF and commits it with LF, so a ledger fresh from
    checkout is canonical in the repository even though its work-tree bytes differ.
    """
    canonical = dump_ledger(ledger)
    return data == canonical or data.replace(b"\r\n", b"\n") == canonical


class LineCache:
    """The canonical lines of the allocations one ledger file has read or written.

    Allocations are immutable and successive ledgers of a file share them, so a write
    after one allocation formats one new line instead of n. The rows shared with the
    last rows asked about, at the head and at the tail (``core.rowdiff``, by identity,
    in C), take that call's lines; the rows between them are looked up by ``id(row)``
    (a re-read under the lock keeps rows it has seen, in any order) and formatted if
    new. Every cached row is held, so no id can be reused while it is cached and a line
    is never stale. The cache grows by the rows it has not seen and starts over from
    the current rows once it holds twice as many. Growing only appends and every call
    swaps in a new state, so a reader in another thread is never confused by a writer.
    """

    def __init__(self) -> None:
        #: Rows held, their lines by id, and the last rows asked about with their lines.
        self._state: tuple[list[shapes.Row], dict[int, str], list[shapes.Row], list[str]] = ([], {}, [], [])

    def lines_of(self, rows: Sequence[shapes.Row]) -> list[str]:
        """The canonical line of each row, in order."""
        held, known, last_rows, last_lines = self._state
        head, tail = common_ends(last_rows, rows)
        between = rows[head : len(rows) - tail]
        # map/list/index run at C speed: ~30 µs for 1,000 cached rows, where formatting them is ~300.
        found: list[str | None] = list(map(known.get, map(id, between)))
        miss = -1
        with suppress(ValueError):
            while True:
                miss = found.index(None, miss + 1)
                row = between[miss]
                found[miss] = line = allocation_line(row)
                held.append(row)  # held before its id goes in
                known[id(row)] = line
        lines = last_lines[:head] + cast("list[str]", found) + last_lines[len(last_lines) - tail :]
        rows = list(rows)  # ours: the caller's list may change after this call
        if len(held) > 2 * len(rows) + 64:
            held, known = list(rows), dict(zip(map(id, rows), lines, strict=True))
        self._state = (held, known, rows, lines)
        return lines

    def seed(self, rows: Sequence[shapes.Row], lines: Sequence[str]) -> None:
        """Take ``lines`` as the canonical lines of ``rows``, one each: the lines a reader of a canonical file
        read them from (``CheckedLedger.lines``), so the write that follows formats only the rows it adds."""
        rows, lines = list(rows), list(lines)
        self._state = (rows, dict(zip(map(id, rows), lines, strict=True)), list(rows), lines)

    def dump(self, ledger: LedgerShape) -> bytes:
        """``dump_ledger(ledger)``, formatting only the rows this cache has not seen."""
        return _canonical(ledger, self.lines_of(ledger.in_key_order()))


# --- reading with the models ------------------------------------------------------------


def parse_ledger(data: bytes, path: Path | str) -> Ledger:
    """Parse and fully validate ledger bytes; raise ``LedgerCorrupt`` naming ``path`` if they are not a ledger.

    A file the fast reader accepts is built from its reading (``_built``): the same
    ledger ``validate_ledger`` gives, for a fraction of the cost and none of pydantic's
    validators; any other file is validated by the models, which say what is wrong.
    """
    try:
        checked = read_checked(data.decode("utf-8"))
    except UnicodeDecodeError:
        checked = None
    return validate_ledger(data, path) if checked is None else _built(checked)


def validate_ledger(data: bytes, path: Path | str) -> Ledger:
    """``parse_ledger`` by the pydantic models alone: the reference the fast reader is held to."""
    # Imported here, not at the top: the fast reader below shares this module and must stay free of pydantic.
    from pydantic import ValidationError

    from portalloc.core.models import Ledger
    from portalloc.core.validation import describe_validation_error

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LedgerCorrupt(f"{path} is not a valid ledger: not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise LedgerCorrupt(f"{path} is not a valid ledger: the file is empty")
    try:
        raw = parse_json(text)
    except ValueError as error:
        raise LedgerCorrupt(f"{path} is {error}") from None
    if not isinstance(raw, dict):
        raise LedgerCorrupt(f"{path} is not a valid ledger: expected a JSON object, found {type(raw).__name__}")
    try:
        return Ledger.model_validate(raw)
    except ValidationError as error:
        raise LedgerCorrupt(f"{path} is not a valid ledger: {describe_validation_error(error)}") from None


def _built(checked: CheckedLedger) -> Ledger:
    """The ``Ledger`` of a file ``read_checked`` accepted: ``Ledger.model_validate``'s result, without checking again.

    ``read_checked`` answers only where the models accept the file and reads it as they
    do (``tests/storage/test_codec.py`` pins both), so the values need no second check:
    the models are built with ``model_construct``, and their validators (whose schemas
    pydantic builds on first use) are never needed by a command that only reads the file
    and adds a row or two.
    """
    from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy

    pools = [Pool.model_construct(**pool) for pool in checked.policy["pools"]]
    reserved = [list(port_range) for port_range in checked.policy["reserved"]]
    policy = PortPolicy.model_construct(**{**checked.policy, "reserved": reserved, "pools": pools})
    row = Allocation.model_construct
    allocations = [
        row(model=model, app_num=app_num, backend=backend, frontend=frontend)
        for model, app_num, backend, frontend in checked.rows
    ]
    return Ledger.model_construct(version=checked.version, policy=policy, allocations=allocations)


def _row_lines(body: str) -> list[str] | None:
    """The allocation lines of what follows the head in the canonical layout; ``None`` for another layout."""
    if body == _EMPTY:
        return []
    if not (body.startswith(_OPEN) and body.endswith(_FOOTER)) or len(body) <= len(_OPEN) + len(_FOOTER):
        return None
    # No raw newline can sit inside a JSON string, and each piece must be exactly one
    # object, so splitting at ",\n" cuts the array where a JSON parser would.
    return body[len(_OPEN) : -len(_FOOTER)].split(_SEPARATOR)


def parse_known_rows(data: bytes, known: Ledger, lines: LineCache) -> Ledger | None:
    """``parse_ledger(data)`` for a file in the canonical layout, validating only rows ``known`` lacks.

    Under the lock a writer re-reads a file that another writer has just changed by a
    row or two. A row whose line is byte for byte the canonical line of one of
    ``known``'s allocations parses to exactly that (already validated) allocation, so
    only the other lines are parsed and validated, one by one; the ledger itself is
    validated as usual. Returns ``None`` for anything else (another layout, another
    policy, a bad row), and the caller does the full parse, which also reports what is wrong.
    """
    from pydantic import ValidationError

    from portalloc.core.models import Allocation, Ledger

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    head = _head(known)
    found = _row_lines(text[len(head) :]) if text.startswith(head) else None
    if found is None:
        return None
    rows = known.in_key_order()
    by_line = dict(zip(lines.lines_of(rows), rows, strict=True))
    allocations: list[Any] = []
    for line in found:
        allocation = by_line.get(line)
        if allocation is None:
            try:
                allocation = Allocation.model_validate(json.loads(line, object_pairs_hook=reject_duplicate_names))
            except (ValueError, RecursionError):  # bad JSON, a repeated name, or an invalid row
                return None
        allocations.append(allocation)
    try:
        # Instances pass strict validation as they are; the ledger's own checks still run.
        version = known.policy.ledger_version  # what the head just matched says
        return Ledger.model_validate({"version": version, "policy": known.policy, "allocations": allocations})
    except ValidationError:
        return None


# --- the fast reader: no pydantic -------------------------------------------------------

Row = tuple[object, object, object, object]


class Document(NamedTuple):
    """A ledger's parts as read, unchecked: what a JSON parser finds in them."""

    version: object
    policy: object
    rows: list[Row]
    #: The line each row was read from, when the text is in the canonical layout (else ``None``).
    lines: list[str] | None = None


class CheckedLedger(NamedTuple):
    """A ledger the models would accept: its policy (``PortPolicy.model_dump()``), its rows (models in NFC)
    and the version the file says (at least its policy's)."""

    policy: Mapping[str, Any]
    rows: list[tuple[str, int, int, int]]
    version: int
    #: Each row's canonical line (``allocation_line``), when the file spells every row as the writer does
    #: (``LineCache.seed``); ``None`` when it is not in the canonical layout or a model was not in NFC.
    lines: list[str] | None = None


#: A row as the writer spells it, and nothing else: a model without escapes or control
#: characters (its text is then its value) and plain JSON integers. The pattern has no
#: room for a second name, so a line it matches cannot repeat one.
_INT = r"(-?(?:0|[1-9][0-9]{0,8}))"
_CANONICAL_ROW = re.compile(_row_layout(r'"([^"\\\x00-\x1f]*)"', _INT, re.escape))
_CANONICAL_HEAD = re.compile(_head_layout(_INT, r"(\{[^\n]*\})", re.escape))


def canonical_document(text: str) -> Document | None:
    """The parts of a ledger in the canonical layout, read line by line; ``None`` for any other text.

    Parsing the whole file with the duplicate-refusing JSON parser costs a Python call
    per object; the canonical layout is recognised with one regular expression per row
    instead. What it accepts, it reads exactly as ``strictjson.parse_json`` would (the
    policy, one short line, goes through ``parse_json`` itself); anything else goes to
    the full parse.
    """
    head = _CANONICAL_HEAD.match(text)
    if head is None:
        return None
    try:
        policy = parse_json(head[2])
    except ValueError:
        return None
    lines = _row_lines(text[head.end() :])
    if lines is None:
        return None
    rows: list[Row] = []
    for line in lines:
        match = _CANONICAL_ROW.fullmatch(line)
        if match is None:
            return None
        name, number, backend, frontend = match.groups()
        rows.append((name, int(number), int(backend), int(frontend)))
    return Document(int(head[1]), policy, rows, lines)


def parsed_document(raw: object) -> Document | None:
    """The parts of a parsed JSON document shaped like a ledger (no unknown name), else ``None``."""
    if not isinstance(raw, dict) or not raw.keys() <= set(LEDGER_FIELDS):
        return None
    rows = raw.get("allocations", [])
    if not isinstance(rows, list):
        return None
    found: list[Row] = []
    for row in rows:
        if not isinstance(row, dict) or row.keys() != set(ROW_FIELDS):
            return None
        found.append(cast("Row", tuple(row[name] for name in ROW_FIELDS)))
    return Document(raw.get("version", LEDGER_VERSION), raw.get("policy", {}), found)


def read_document(text: str) -> Document | None:
    """The parts of ``text`` if it is strict JSON shaped like a ledger, else ``None``; the values are unchecked."""
    document = canonical_document(text)
    if document is not None:
        return document
    try:
        return parsed_document(parse_json(text))
    except ValueError:
        return None


#: The last text ``read_checked`` read, and its reading: a command-line write of a new key reads its ledger
#: twice, the lookup that finds the key missing and then the write, most often the very same text. Its
#: users never change a reading (they build their own values of it).
_last_checked: tuple[str, CheckedLedger | None] | None = None


def read_checked(text: str) -> CheckedLedger | None:
    """The policy and rows of ``text`` if ``parse_ledger`` would accept it, else ``None`` (let it say why)."""
    global _last_checked
    last = _last_checked
    if last is not None and last[0] == text:
        return last[1]
    checked = _read_checked(text)
    _last_checked = (text, checked)
    return checked


def _read_checked(text: str) -> CheckedLedger | None:
    document = read_document(text)
    if document is None or not _is_int(document.version, LEDGER_VERSION, LATEST_LEDGER_VERSION):
        return None
    policy = _checked_policy(document.policy)
    if policy is None or cast("int", document.version) < _ledger_version(policy):
        return None
    rows = []
    names: dict[str, str | None] = {}  # each distinct model name is checked once
    as_written = document.lines is not None  # and so far every row reads as it is spelled
    for row in document.rows:
        # Every row is checked: one bad row makes the file invalid.
        valid = _checked_row(row, names)
        if valid is None:
            return None
        as_written = as_written and valid == row
        rows.append(valid)
    return CheckedLedger(policy, rows, cast("int", document.version), document.lines if as_written else None)


def _checked_policy(policy: object) -> dict[str, Any] | None:
    """The policy with its defaults filled in (``PortPolicy.model_dump()``) if the model accepts it, else ``None``."""
    if not isinstance(policy, dict) or not policy.keys() <= _CHECKED_POLICY_FIELDS:
        return None
    full = {**POLICY_DEFAULTS, **{name: [] for name in POLICY_LISTS}, **policy}
    if not all(_is_int(full[name], MIN_PORT, MAX_PORT) for name in POLICY_PORTS):
        return None
    if not all(type(full[name]) is bool for name in POLICY_FLAGS) or not _is_int(full["step"], 1, None):
        return None
    if not all(type(full[name]) is str and full[name] in choices for name, choices in POLICY_CHOICES.items()):
        return None
    if not full["backend_start"] < full["frontend_start"] <= full["max_port"]:
        return None
    count = pair_count(full["backend_start"], full["frontend_start"], full["step"], full["max_port"])
    full["pools"] = _checked_pools(full["pools"], count)
    return full if _checked_reserved(full["reserved"]) and full["pools"] is not None else None


def _checked_reserved(reserved: object) -> bool:
    """Whether ``reserved`` is ranges of ports ``[low, high]``, sorted, apart and not touching (one spelling)."""
    if type(reserved) is not list:
        return False
    for port_range in reserved:
        if type(port_range) is not list or len(port_range) != 2:
            return False
        if not all(_is_int(port, MIN_PORT, MAX_PORT) for port in port_range):
            return False
    return reserved == merge_ranges(reserved)


def _checked_pools(pools: object, count: int) -> list[dict[str, Any]] | None:
    """The pools with their defaults filled in and their models in NFC, if the model accepts them, else ``None``."""
    if type(pools) is not list:
        return None
    checked: list[dict[str, Any]] = []
    for pool in pools:
        if not isinstance(pool, dict) or not set(POOL_FIELDS) - set(POOL_DEFAULTS) <= pool.keys() <= set(POOL_FIELDS):
            return None
        full: dict[str, Any] = {name: pool.get(name, POOL_DEFAULTS.get(name)) for name in POOL_FIELDS}
        if not (_is_int(full["first"], 0, None) and _is_int(full["last"], full["first"], count - 1)):
            return None
        if (
            type(full["overflow"]) is not str
            or full["overflow"] not in POOL_OVERFLOWS
            or type(full["model"]) is not str
        ):
            return None
        try:
            full["model"] = check_model_name(full["model"])
        except PortallocError:
            return None
        if checked and full["first"] <= checked[-1]["last"]:
            return None  # overlapping, or not sorted by pair
        checked.append(full)
    return checked if len({pool["model"] for pool in checked}) == len(checked) else None


def _checked_row(row: Row, names: dict[str, str | None]) -> tuple[str, int, int, int] | None:
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


def _ledger_version(policy: Mapping[str, Any]) -> int:
    """``PortPolicy.ledger_version`` of a checked policy (the models are not imported here)."""
    return SEPARATE_WORKTREES_VERSION if policy["worktrees"] == "separate" else LEDGER_VERSION


def _is_int(value: object, low: int, high: int | None) -> bool:
    # type() is int, not isinstance: JSON true is a bool, and pydantic's strict mode refuses it as an int.
    return type(value) is int and low <= value and (high is None or value <= high)
