"""``portalloc import`` of the platform's own data: the original table as the old service filled it,
which column value means "released", every ``export`` format back in, and hostile databases bounded."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import click
import pytest

from tests.cli.test_cli import assert_one_error_line
from tests.conftest import RunCli, portalloc_script, subprocess_env

#: The original table exactly as the old service's summary gives it.
ORIGINAL_TABLE = """
CREATE TABLE port_configurations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model VARCHAR(100) NOT NULL,
    app_num INTEGER NOT NULL,
    backend_port INTEGER NOT NULL,
    frontend_port INTEGER NOT NULL,
    is_available BOOLEAN DEFAULT TRUE
)
"""


def old_database(
    path: Path, rows: list[tuple[object, ...]], columns: str = "model, app_num, backend_port, frontend_port"
) -> Path:
    """The table, filled as the old service filled it: an INSERT that does not name ``is_available``."""
    connection = sqlite3.connect(path)
    connection.execute(ORIGINAL_TABLE)
    marks = ", ".join("?" for _ in columns.split(","))
    connection.executemany(f"INSERT INTO port_configurations ({columns}) VALUES ({marks})", rows)
    connection.commit()
    connection.close()
    return path


@pytest.mark.usefixtures("new_ledger")
def test_the_original_table_keeps_every_row_but_true_clashes(run_cli: RunCli, tmp_path: Path) -> None:
    db = old_database(
        tmp_path / "old.db",
        [
            ("model_a", 1, 5001, 8001),
            ("model_b", 1, 5003, 8003),
            ("model_c", 1, 5005, 8005),
            ("model_d", 1, 5003, 8007),  # a true clash: model_b/1 holds 5003
        ],
    )
    assert sqlite3.connect(db).execute("SELECT count(*) FROM port_configurations WHERE is_available").fetchone() == (4,)
    result = run_cli("import", str(db))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"Imported 4 rows from {db} (SQLite port_configurations table): 3 imported, 0 already in the ledger, 1 skipped."
    )
    clash = "id 4 model_d/1 5003/8007: port 5003 is taken by model_b/1 (backend), imported from an earlier row"
    assert clash in result.stdout
    listed = [(row["model"], row["backend"]) for row in json.loads(run_cli("list", "--json").stdout)]
    assert listed == [("model_a", 5001), ("model_b", 5003), ("model_c", 5005)]
    # Their ports are not handed out again.
    assert run_cli("get", "model_new", "1").stdout == "model_new/1: backend 5007, frontend 8007\n"


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize(
    ("rule", "imported"),
    [
        ("is_available=0", ["free/1", "yes/1"]),  # 0, 'false' and 'no' are released; 1, 'true', 'yes' are kept
        ("is_available=1", ["gone/1", "no/1", "off/1"]),
        ("is_available=false", ["free/1", "yes/1"]),
    ],
)
def test_released_when_reads_explicit_values(run_cli: RunCli, tmp_path: Path, rule: str, imported: list[str]) -> None:
    db = old_database(
        tmp_path / "old.db",
        [
            ("free", 1, 5001, 8001, 1),
            ("gone", 1, 5003, 8003, 0),
            ("no", 1, 5005, 8005, "false"),
            ("yes", 1, 5007, 8007, "Yes"),
            ("off", 1, 5009, 8009, "no"),
        ],
        columns="model, app_num, backend_port, frontend_port, is_available",
    )
    result = run_cli("import", str(db), "--released-when", rule, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["released_when"] == rule.replace("false", "0")  # the rule as read: a flag, whatever its spelling
    released = [f"{row['model']}/{row['app_num']}" for row in report["skipped_rows"]]
    assert all(row["why"] == "released in the source" for row in report["skipped_rows"])
    listed = [f"{row['model']}/{row['app_num']}" for row in json.loads(run_cli("list", "--json").stdout)]
    assert listed == imported
    assert sorted(released + listed) == ["free/1", "gone/1", "no/1", "off/1", "yes/1"]


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("is_available=maybe", "'maybe' is not a yes/no value"),
        ("is_available", "COLUMN=VALUE"),
        ("no_such_column=0", "no column no_such_column"),
    ],
)
def test_released_when_bad_rule(run_cli: RunCli, tmp_path: Path, ledger_path: Path, rule: str, message: str) -> None:
    db = old_database(tmp_path / "old.db", [("a", 1, 5001, 8001)])
    before = ledger_path.read_bytes()
    result = run_cli("import", str(db), "--released-when", rule)
    assert result.exit_code in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert ledger_path.read_bytes() == before


@pytest.mark.usefixtures("new_ledger")
def test_a_flag_that_says_neither_is_refused_not_guessed(run_cli: RunCli, tmp_path: Path, ledger_path: Path) -> None:
    db = old_database(
        tmp_path / "old.db",
        [("a", 1, 5001, 8001, 1), ("b", 1, 5003, 8003, "perhaps")],
        columns="model, app_num, backend_port, frontend_port, is_available",
    )
    before = ledger_path.read_bytes()
    result = run_cli("import", str(db), "--released-when", "is_available=0")
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert "id 2: is_available is 'perhaps', not a yes/no value" in result.stderr
    assert ledger_path.read_bytes() == before


# --- bounded reading ----------------------------------------------------------------------


def _hostile(path: Path, view: str) -> Path:
    connection = sqlite3.connect(path)
    connection.execute(view)
    connection.commit()
    connection.close()
    return path


RECURSIVE_VIEW = """
CREATE VIEW port_configurations AS
WITH RECURSIVE n(i) AS (SELECT 1 UNION SELECT i + 1 FROM n)
SELECT i AS id, 'm' || i AS model, 1 AS app_num, 5001 AS backend_port, 8001 AS frontend_port, 0 AS is_available
FROM n ORDER BY i DESC
"""

MILLIONS_VIEW = """
CREATE VIEW port_configurations AS
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000)
SELECT i AS id, 'm' AS model, i AS app_num, 5001 AS backend_port, 8001 AS frontend_port, 0 AS is_available FROM n
"""


def _run_import(ledger: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    script, env = portalloc_script(), subprocess_env()
    return subprocess.run(
        [script, "--ledger", str(ledger), "import", *argv], env=env, capture_output=True, text=True, timeout=120
    )


def test_a_recursive_view_stops_at_the_time_limit(tmp_path: Path) -> None:
    db = _hostile(tmp_path / "hostile.db", RECURSIVE_VIEW)
    assert db.stat().st_size <= 8192
    ledger = tmp_path / "portalloc.json"
    subprocess.run([portalloc_script(), "init", str(ledger)], env=subprocess_env(), check=True, capture_output=True)
    before = ledger.read_bytes()
    done = _run_import(ledger, str(db), "--time-limit", "1")
    assert done.returncode == 1
    assert_one_error_line(done.stderr)
    assert "time limit of 1 s" in done.stderr and "--time-limit" in done.stderr
    assert ledger.read_bytes() == before
    # Nothing was staged beside the database or the ledger.
    assert {p.name for p in tmp_path.iterdir()} <= {"hostile.db", "portalloc.json", "portalloc.json.lock"}


def test_a_view_of_millions_of_rows_stops_at_the_row_limit(tmp_path: Path) -> None:
    db = _hostile(tmp_path / "hostile.db", MILLIONS_VIEW)
    ledger = tmp_path / "portalloc.json"
    subprocess.run([portalloc_script(), "init", str(ledger)], env=subprocess_env(), check=True, capture_output=True)
    done = _run_import(ledger, str(db))
    assert done.returncode == 1
    assert_one_error_line(done.stderr)
    assert "more than 100,000 rows" in done.stderr and "--max-rows" in done.stderr


@pytest.mark.usefixtures("new_ledger")
def test_a_view_within_the_limits_is_read(run_cli: RunCli, tmp_path: Path) -> None:
    db = _hostile(
        tmp_path / "view.db",
        "CREATE VIEW port_configurations AS SELECT 1 AS id, 'm' AS model, 1 AS app_num, "
        "5001 AS backend_port, 8001 AS frontend_port, 1 AS is_available",
    )
    result = run_cli("import", str(db), "--max-rows", "1")
    assert result.exit_code == 0, result.stderr
    assert "1 imported" in result.stdout
    too_few = run_cli("import", str(db), "--max-rows", "0")
    assert too_few.exit_code == 2  # a usage error: the limit must be at least 1


@pytest.mark.usefixtures("new_ledger")
def test_a_virtual_table_is_read_within_the_limits_or_refused(run_cli: RunCli, tmp_path: Path) -> None:
    fts = tmp_path / "fts.db"
    connection = sqlite3.connect(fts)
    connection.execute(
        "CREATE VIRTUAL TABLE port_configurations USING fts5(id, model, app_num, backend_port, frontend_port)"
    )
    connection.executemany("INSERT INTO port_configurations VALUES (?, 'm', ?, ?, ?)", [(1, 1, 5001, 8001)] * 3)
    connection.commit()
    connection.close()
    assert "1 imported" in run_cli("import", str(fts), "--dry-run").stdout
    too_many = run_cli("import", str(fts), "--max-rows", "2")
    assert too_many.exit_code == 1
    assert_one_error_line(too_many.stderr)
    assert "more than 2 rows" in too_many.stderr

    # A module this SQLite does not have: the schema names it, nothing can read it.
    unknown = tmp_path / "unknown.db"
    connection = sqlite3.connect(unknown)
    connection.execute("PRAGMA writable_schema = ON")
    connection.execute(
        "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('table', 'port_configurations', "
        "'port_configurations', 0, 'CREATE VIRTUAL TABLE port_configurations USING nosuchmodule(x)')"
    )
    connection.commit()
    connection.close()
    refused = run_cli("import", str(unknown))
    assert refused.exit_code == 1
    assert_one_error_line(refused.stderr)
    assert "no such module: nosuchmodule" in refused.stderr


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"[]", ("--format", "sqlite"), "is not an SQLite database"),
        (b"[]", ("--released-when", "is_available=0"), "--released-when applies to an SQLite database"),
        (b"[]", ("--format", "csv"), "does not start with the CSV header model,app_num,backend,frontend"),
        (b'{"allocations": []}', ("--format", "json"), "is not a JSON list, as --format json is"),
    ],
)
def test_a_source_that_is_not_what_was_asked(
    run_cli: RunCli, tmp_path: Path, ledger_path: Path, content: bytes, args: tuple[str, ...], message: str
) -> None:
    source = tmp_path / "source"
    source.write_bytes(content)
    before = ledger_path.read_bytes()
    result = run_cli("import", str(source), *args)
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert message in result.stderr
    assert ledger_path.read_bytes() == before


@pytest.mark.usefixtures("new_ledger")
def test_csv_rows_that_are_not_numbers_are_reported_not_read_loosely(run_cli: RunCli, tmp_path: Path) -> None:
    source = tmp_path / "ports.csv"
    source.write_text("model,app_num,backend,frontend\na,1,5001,8001\nb,+2,5003,8003\nc,3, 5005,8005\nd,4,5007\n")
    report = json.loads(run_cli("import", str(source), "--json").stdout)
    assert (report["format"], report["imported"], report["skipped"]) == ("csv", 1, 3)
    assert [(row["where"], row["why"]) for row in report["skipped_rows"]] == [
        ("line 3", "invalid row"),
        ("line 4", "invalid row"),
        ("line 5", "invalid row"),
    ]
    assert report["skipped_rows"][2]["reason"] == "3 fields, not 4"


def test_the_command_offers_every_format_the_reader_knows() -> None:
    from portalloc.cli.commands.import_ import _KINDS, import_allocations
    from portalloc.integrations.importers import FORMATS

    (option,) = [param for param in import_allocations.params if param.name == "fmt"]
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == list(FORMATS) and set(_KINDS) == set(FORMATS)


@pytest.mark.usefixtures("new_ledger")
def test_a_wal_database_is_read_without_leaving_files_beside_it(run_cli: RunCli, tmp_path: Path) -> None:
    old = tmp_path / "old" / "service.db"
    old.parent.mkdir()
    connection = sqlite3.connect(old)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(ORIGINAL_TABLE)
    connection.execute(
        "INSERT INTO port_configurations (model, app_num, backend_port, frontend_port) VALUES ('a', 1, 5001, 8001)"
    )
    connection.commit()
    connection.close()
    before = old.read_bytes()
    assert "1 imported" in run_cli("import", str(old)).stdout
    assert [p.name for p in old.parent.iterdir()] == ["service.db"] and old.read_bytes() == before

    # A live service's database: rows still in the -wal file are read too.
    writer = sqlite3.connect(old)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute(
        "INSERT INTO port_configurations (model, app_num, backend_port, frontend_port) VALUES ('b', 1, 5003, 8003)"
    )
    writer.commit()
    try:
        assert "1 imported, 1 already in the ledger" in run_cli("import", str(old)).stdout
    finally:
        writer.close()
