"""Bringing allocations in from elsewhere: a ``port_config.json`` list, the old SQLite table, another ledger.

``read_import_rows`` reads any of the three (detected from the file's content) into
``ImportRow``s without judging them; ``plan_import`` is the pure part that decides,
row by row, what joins the ledger and why the rest does not. Every pair is judged by
``allocator.pair_refusal``, the same rule that guards the ledger everywhere else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from portalloc.core.allocator import pair_refusal
from portalloc.core.keys import check_key
from portalloc.core.limits import MAX_IMPORT_BYTES, MAX_PORT, MIN_PORT
from portalloc.core.models import Allocation, Ledger, describe_validation_error
from portalloc.core.names import KnownModels
from portalloc.errors import ConfusableName, ImportSourceError, InvalidKey
from portalloc.storage.files import read_regular_file

#: The table the platform's database-backed allocator kept its rows in.
SQLITE_TABLE = "port_configurations"
_SQLITE_COLUMNS = "id, model, app_num, backend_port, frontend_port, is_available"
_SQLITE_MAGIC = b"SQLite format 3\x00"

#: Why a row is skipped, as counted in the report (``ImportOutcome.why``).
INVALID = "invalid row"
RELEASED = "released in the source"
DIFFERENT = "key already holds other ports"
DUPLICATE = "key repeated in the source"
CLASH = "port clashes with another imported row"
TAKEN = "port already in the ledger"
POLICY = "refused by the policy"


class ImportRow(NamedTuple):
    """One row of a source, as read: values unchecked, ``refusal`` set when the reader already knows it is unusable."""

    where: str
    model: Any
    app_num: Any
    backend: Any
    frontend: Any
    refusal: tuple[str, str] | None = None


class ImportOutcome(NamedTuple):
    """What became of one row: ``status`` is ``imported``, ``kept`` (already there) or ``skipped``."""

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
        return dict(Counter(o.why for o in self.outcomes if o.why is not None).most_common())


class ImportSource(NamedTuple):
    """A file's rows and what kind of file it was (``sqlite``, ``port-config`` or ``ledger``)."""

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


def read_import_rows(path: Path) -> ImportSource:
    """Read ``path`` as the old SQLite database, a ledger or a ``port_config.json`` list (detected).

    Raises ``ImportSourceError`` for a file that is none of them, ``UnsafeFile`` for one
    that is not a regular file of bounded size, and ``LedgerCorrupt`` for a broken ledger.
    """
    try:
        data = read_regular_file(path, "import file", MAX_IMPORT_BYTES).data
    except FileNotFoundError:
        raise ImportSourceError(f"import file {path} does not exist") from None
    except OSError as error:
        raise ImportSourceError(f"cannot read import file {path}: {error.strerror or error}") from None
    if data.startswith(_SQLITE_MAGIC):
        return ImportSource("sqlite", _sqlite_rows(path))
    from portalloc.storage.strictjson import parse_json

    try:
        raw = parse_json(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ImportSourceError(
            f"{path} is neither an SQLite database nor JSON ({error}); "
            "portalloc imports the port_configurations table, a port_config.json list or a ledger"
        ) from None
    if isinstance(raw, dict) and "allocations" in raw:
        return ImportSource("ledger", _ledger_rows(data, path))
    if isinstance(raw, list):
        return ImportSource("port-config", _port_config_rows(raw))
    raise ImportSourceError(
        f"{path} is JSON but neither a port_config.json list nor a ledger (found {type(raw).__name__})"
    )


def _sqlite_rows(path: Path) -> list[ImportRow]:
    import sqlite3
    from urllib.parse import quote

    # mode=ro: the old database is evidence; nothing portalloc does may change it.
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        raise ImportSourceError(f"cannot open SQLite database {path}: {error}") from None
    try:
        cursor = connection.execute(f"SELECT {_SQLITE_COLUMNS} FROM {SQLITE_TABLE} ORDER BY id")
        rows = cursor.fetchall()
    except sqlite3.Error as error:
        raise ImportSourceError(
            f"{path} has no readable {SQLITE_TABLE} table with columns {_SQLITE_COLUMNS}: {error}"
        ) from None
    finally:
        connection.close()
    return [
        ImportRow(
            f"id {row_id}",
            model,
            app_num,
            backend,
            frontend,
            # The old allocator freed a pair by setting is_available; such a row holds nothing.
            (RELEASED, "is_available is set: the old database had released this pair") if available else None,
        )
        for row_id, model, app_num, backend, frontend, available in rows
    ]


def _ledger_rows(data: bytes, path: Path) -> list[ImportRow]:
    from portalloc.storage.ledger import parse_ledger

    ledger = parse_ledger(data, path)
    return [
        ImportRow(f"allocation {number}", a.model, a.app_num, a.backend, a.frontend)
        for number, a in enumerate(ledger.allocations, start=1)
    ]


def _port_config_rows(entries: Sequence[Any]) -> list[ImportRow]:
    from portalloc.storage.preconfig import PreconfiguredPorts

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
