"""Bringing allocations in from elsewhere: the old SQLite table, a ``port_config.json`` list, another ledger,
or what ``portalloc export`` wrote (``--format json`` or ``csv``), so that every export comes back in.

``read_import_rows`` reads any of them (detected from the file's content, or named)
into ``ImportRow``s without judging them; ``plan_import`` is the pure part that decides,
row by row, what joins the ledger and why the rest does not. Every pair is judged by
``allocator.pair_refusal``, the same rule that guards the ledger everywhere else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from portalloc.core.allocator import pair_refusal
from portalloc.core.keys import check_key
from portalloc.core.limits import MAX_IMPORT_BYTES, MAX_PORT, MIN_PORT
from portalloc.core.models import Allocation, Ledger
from portalloc.core.names import KnownModels
from portalloc.core.validation import describe_validation_error
from portalloc.errors import ConfusableName, ImportSourceError, InvalidKey
from portalloc.integrations.sqlitesource import ReadLimits, ReleasedWhen, read_table
from portalloc.storage.files import read_regular_file

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: The fields of one row of ``export --format json`` (``list --json``) and the header of ``--format csv``.
EXPORT_FIELDS = ("model", "app_num", "backend", "frontend")
#: Every kind of source, as ``--format`` names it.
FORMATS = ("sqlite", "ledger", "port-config", "json", "csv")
DEFAULT_LIMITS = ReadLimits()

#: Why a row is skipped, as counted in the report (``ImportOutcome.why``).
INVALID = "invalid row"
RELEASED = "released in the source"
DIFFERENT = "key already holds other ports"
DUPLICATE = "key repeated in the source"
CLASH = "port clashes with another imported row"
TAKEN = "port already in the ledger"
POLICY = "refused by the policy"
#: Why an imported row carries a note (it is kept: dropping a live pair would hand its port out twice).
LEASED_HERE = "port leased on this machine to another ledger's key"


class ImportRow(NamedTuple):
    """One row of a source, as read: values unchecked, ``refusal`` set when the reader already knows it is unusable."""

    where: str
    model: Any
    app_num: Any
    backend: Any
    frontend: Any
    refusal: tuple[str, str] | None = None


class ImportOutcome(NamedTuple):
    """What became of one row: ``status`` is ``imported``, ``kept`` (already there) or ``skipped``.

    ``why`` (one of the reasons above) and ``reason`` say why a row was skipped, or what
    to know about a row that was imported (``LEASED_HERE``).
    """

    row: ImportRow
    status: str
    why: str | None = None
    reason: str | None = None

    def label(self) -> str:
        """``model/app_num`` of the row as it was read."""
        return f"{self.row.model}/{self.row.app_num}"


class ImportReport(NamedTuple):
    """Every row's outcome, in source order."""

    outcomes: list[ImportOutcome]

    def count(self, status: str) -> int:
        """How many rows ended with ``status``."""
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    def skipped_by_reason(self) -> dict[str, int]:
        """Skipped rows counted by why, most common first."""
        return dict(Counter(o.why for o in self.outcomes if o.status == "skipped" and o.why).most_common())

    def noted(self) -> list[ImportOutcome]:
        """The rows imported with a note (``why``) to read."""
        return [o for o in self.outcomes if o.status == "imported" and o.why is not None]

    def with_notes(self, notes: Mapping[tuple[str, int], str], why: str) -> ImportReport:
        """This report with ``notes`` (by key) on the rows it imports, as ``why`` (a row the ledger already held
        is not this import's to note: ``check --host`` reports it)."""
        outcomes = []
        for outcome in self.outcomes:
            note = (
                notes.get(check_key(outcome.row.model, outcome.row.app_num)) if outcome.status == "imported" else None
            )
            outcomes.append(outcome if note is None else outcome._replace(why=why, reason=note))
        return ImportReport(outcomes)


class ImportSource(NamedTuple):
    """A file's rows and what kind of file it was (one of ``FORMATS``)."""

    kind: str
    rows: list[ImportRow]


def _port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and MIN_PORT <= value <= MAX_PORT


def plan_import(
    ledger: Ledger, rows: Iterable[ImportRow], *, allow_confusable: bool = False
) -> tuple[Ledger, ImportReport]:
    """The ledger with every acceptable row added, and the outcome of each row. Pure.

    A row is skipped when its reader refused it, its key or ports are invalid, its key
    already holds a different pair (never overwritten), its key came earlier in the
    source, a port clashes with an earlier imported row, or ``pair_refusal`` refuses
    the pair (outside the policy, a bad port, held in the ledger), or its model is new
    and may not enter (``names.KnownModels``: a look-alike of an existing model unless
    ``allow_confusable``). A key that already holds exactly this pair is ``kept``.
    """
    known = KnownModels(ledger, allow_confusable=allow_confusable)
    outcomes: list[ImportOutcome] = []
    added: dict[tuple[str, int], Allocation] = {}
    imported_ports: dict[int, str] = {}
    for row in rows:
        if row.refusal is not None:
            outcomes.append(ImportOutcome(row, "skipped", *row.refusal))
            continue
        try:
            key = check_key(row.model, row.app_num)
        except InvalidKey as error:
            outcomes.append(ImportOutcome(row, "skipped", INVALID, str(error)))
            continue
        if not (_port(row.backend) and _port(row.frontend)):
            reason = f"ports must be whole numbers from {MIN_PORT} to {MAX_PORT}, not {row.backend!r}/{row.frontend!r}"
            outcomes.append(ImportOutcome(row, "skipped", INVALID, reason))
            continue
        pair = (row.backend, row.frontend)
        existing = ledger.find(*key)
        if existing is not None:
            if existing.ports == pair:
                outcomes.append(ImportOutcome(row, "kept"))
            else:
                reason = f"the ledger already gives it {existing.backend}/{existing.frontend}; not overwritten"
                outcomes.append(ImportOutcome(row, "skipped", DIFFERENT, reason))
            continue
        if key in added:
            earlier = added[key]
            reason = f"already imported with {earlier.backend}/{earlier.frontend} from an earlier row"
            outcomes.append(ImportOutcome(row, "skipped", DUPLICATE, reason))
            continue
        clashes = [f"port {port} is taken by {imported_ports[port]}" for port in pair if port in imported_ports]
        if clashes:
            outcomes.append(ImportOutcome(row, "skipped", CLASH, "; ".join(clashes) + ", imported from an earlier row"))
            continue
        refusal = pair_refusal(ledger, key, pair)
        if refusal is not None:
            why = TAKEN if any(port in ledger.used_ports for port in pair) else POLICY
            outcomes.append(ImportOutcome(row, "skipped", why, refusal))
            continue
        try:
            known.admit(key[0])
        except (InvalidKey, ConfusableName) as error:
            outcomes.append(ImportOutcome(row, "skipped", INVALID, str(error)))
            continue
        allocation = Allocation.model_construct(model=key[0], app_num=key[1], backend=pair[0], frontend=pair[1])
        added[key] = allocation
        label = allocation.label()
        imported_ports.update({pair[0]: f"{label} (backend)", pair[1]: f"{label} (frontend)"})
        outcomes.append(ImportOutcome(row, "imported"))
    return ledger.with_added(list(added.values())), ImportReport(outcomes)


def read_import_rows(
    path: Path,
    fmt: str | None = None,
    *,
    limits: ReadLimits = DEFAULT_LIMITS,
    released_when: ReleasedWhen | None = None,
) -> ImportSource:
    """Read ``path`` as one of ``FORMATS``: ``fmt``, else detected from the content.

    ``limits`` bound what is read (``ImportSourceError`` past them); ``released_when``
    says which SQLite rows were released (by default every row is kept). Raises
    ``ImportSourceError`` for a file that is not what was asked (or none of them),
    ``UnsafeFile`` for one that is not a regular file of bounded size, and
    ``LedgerCorrupt`` for a broken ledger.
    """
    try:
        data = read_regular_file(path, "import file", MAX_IMPORT_BYTES).data
    except FileNotFoundError:
        raise ImportSourceError(f"import file {path} does not exist") from None
    except OSError as error:
        raise ImportSourceError(f"cannot read import file {path}: {error.strerror or error}") from None
    kind = fmt or _detect(path, data)
    if kind == "sqlite":
        if not data.startswith(_SQLITE_MAGIC):
            raise ImportSourceError(f"{path} is not an SQLite database")
        return ImportSource(kind, _sqlite_rows(path, limits, released_when))
    if released_when is not None:
        raise ImportSourceError(f"--released-when applies to an SQLite database; {path} is read as {kind}")
    text = _text(path, data)
    rows = _csv_rows(path, text) if kind == "csv" else _json_rows(path, data, kind, _json(path, text))
    if len(rows) > limits.max_rows:
        raise ImportSourceError(
            f"{path} has more than {limits.max_rows:,} rows; nothing imported (--max-rows raises the limit)"
        )
    return ImportSource(kind, rows)


def _detect(path: Path, data: bytes) -> str:
    if data.startswith(_SQLITE_MAGIC):
        return "sqlite"
    text = _text(path, data)
    if text.partition("\n")[0].strip() == ",".join(EXPORT_FIELDS):
        return "csv"
    raw = _json(path, text)
    if isinstance(raw, dict) and "allocations" in raw:
        return "ledger"
    if isinstance(raw, list):
        first = next((entry for entry in raw if isinstance(entry, dict)), {})
        return "json" if "app_num" in first and "app_number" not in first else "port-config"
    raise ImportSourceError(
        f"{path} is JSON but neither a port_config.json list, an export nor a ledger (found {type(raw).__name__})"
    )


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImportSourceError(f"{path} is neither an SQLite database nor UTF-8 text ({error})") from None


def _json(path: Path, text: str) -> Any:
    from portalloc.storage.strictjson import parse_json

    try:
        return parse_json(text)
    except ValueError as error:
        raise ImportSourceError(
            f"{path} is neither an SQLite database, JSON nor an exported CSV ({error}); portalloc imports "
            "the port_configurations table, a port_config.json list, a ledger and what export writes"
        ) from None


def _json_rows(path: Path, data: bytes, kind: str, raw: Any) -> list[ImportRow]:
    if kind == "ledger":
        if not (isinstance(raw, dict) and "allocations" in raw):
            raise ImportSourceError(f"{path} is not a ledger (no allocations)")
        return _ledger_rows(data, path)
    if not isinstance(raw, list):
        raise ImportSourceError(f"{path} is not a JSON list, as --format {kind} is (found {type(raw).__name__})")
    return _export_rows(raw) if kind == "json" else _port_config_rows(raw)


def _sqlite_rows(path: Path, limits: ReadLimits, released_when: ReleasedWhen | None) -> list[ImportRow]:
    return [
        ImportRow(where, model, app_num, backend, frontend, (RELEASED, released) if released else None)
        for where, model, app_num, backend, frontend, released in read_table(path, limits, released_when)
    ]


def _ledger_rows(data: bytes, path: Path) -> list[ImportRow]:
    from portalloc.storage.codec import parse_ledger

    ledger = parse_ledger(data, path)
    return [
        ImportRow(f"allocation {number}", a.model, a.app_num, a.backend, a.frontend)
        for number, a in enumerate(ledger.allocations, start=1)
    ]


def _export_rows(entries: Sequence[Any]) -> list[ImportRow]:
    """``export --format json`` (``list --json``): objects of exactly ``EXPORT_FIELDS``."""
    rows = []
    for number, entry in enumerate(entries, start=1):
        where = f"entry {number}"
        if not isinstance(entry, dict) or set(entry) != set(EXPORT_FIELDS):
            found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            reason = f"not an object of {', '.join(EXPORT_FIELDS)} (found {found})"
            model, app_num, backend, frontend = (
                entry.get(name) if isinstance(entry, dict) else None for name in EXPORT_FIELDS
            )
            rows.append(ImportRow(where, model, app_num, backend, frontend, (INVALID, reason)))
            continue
        rows.append(ImportRow(where, *(entry[name] for name in EXPORT_FIELDS)))
    return rows


def _csv_rows(path: Path, text: str) -> list[ImportRow]:
    """``export --format csv``: the header ``model,app_num,backend,frontend``, then one row per allocation."""
    import csv

    records = csv.reader(text.splitlines(keepends=True))
    header = next(records, [])
    if header != list(EXPORT_FIELDS):
        raise ImportSourceError(f"{path} does not start with the CSV header {','.join(EXPORT_FIELDS)}")
    rows = []
    for record in records:
        where = f"line {records.line_num}"
        if len(record) != len(EXPORT_FIELDS):
            reason = f"{len(record)} fields, not {len(EXPORT_FIELDS)}"
            model, app_num, backend, frontend = [*record, "", "", "", ""][:4]
            rows.append(ImportRow(where, model, app_num, backend, frontend, (INVALID, reason)))
            continue
        model, app_num, backend, frontend = record
        rows.append(ImportRow(where, model, _whole_number(app_num), _whole_number(backend), _whole_number(frontend)))
    return rows


def _whole_number(text: str) -> int | str:
    # Digits only: "+5", " 5" or "5.0" stay text, and the row is reported as invalid, not read as 5.
    return int(text) if text.isascii() and text.isdigit() else text


def _port_config_rows(entries: Sequence[Any]) -> list[ImportRow]:
    from portalloc.storage.preconfigentry import PreconfiguredPorts

    rows = []
    for number, entry in enumerate(entries, start=1):
        where = f"entry {number}"
        if not isinstance(entry, dict):
            rows.append(ImportRow(where, None, None, None, None, (INVALID, f"not an object ({type(entry).__name__})")))
            continue
        values = (entry.get("model"), entry.get("app_number"), entry.get("backend_port"), entry.get("frontend_port"))
        try:
            PreconfiguredPorts.model_validate(entry)
        except ValidationError as error:
            rows.append(ImportRow(where, *values, (INVALID, describe_validation_error(error))))
            continue
        rows.append(ImportRow(where, *values))
    return rows
