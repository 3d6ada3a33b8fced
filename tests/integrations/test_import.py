"""``portalloc import``: the old SQLite table, a port_config.json list, another ledger; the exact report."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portalloc.core.allocator import assign_many, pair_refusal
from portalloc.core.audit import find_conflicts
from portalloc.core.models import Allocation, Ledger
from portalloc.integrations.importers import ImportRow, plan_import
from portalloc.storage.codec import dump_ledger, parse_ledger
from tests.cli.test_cli import assert_one_error_line
from tests.conftest import RunCli

#: A database that set ``is_available`` on every row, 1 where it had released the pair
#: (``--released-when is_available=1``; the original service's own rows: test_import_sources.py).
ORIGINAL_SCHEMA = """
CREATE TABLE port_configurations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model VARCHAR(100) NOT NULL,
    app_num INTEGER NOT NULL,
    backend_port INTEGER NOT NULL,
    frontend_port INTEGER NOT NULL,
    is_available BOOLEAN DEFAULT 1
)
"""

ROWS = [
    ("model_a", 1, 5001, 8001, 0),  # already in the ledger with these ports: kept
    ("model_b", 1, 5003, 8003, 0),  # free: imported
    ("model_c", 1, 5003, 8005, 0),  # backend clashes with model_b/1 above
    ("model_d", 1, 5007, 8001, 0),  # frontend held by model_a/1 in the ledger
    ("model_e", 1, 5061, 8061, 0),  # a browsers' bad port
    ("model_f", 1, 4000, 8013, 0),  # below the policy's backend range
    ("model_g", 1, 5015, 8015, 1),  # released in the old database (--released-when is_available=1)
    ("model_h", 1, 5017, 8017, 0),  # the ledger gives it other ports
    ("model_i", 0, 5019, 8019, 0),  # not a valid app number
    ("model_j", 2, 5021, 8021, 0),  # free: imported
]


def make_database(path: Path, rows: list[tuple[str, int, int, int, int]] = ROWS) -> Path:
    connection = sqlite3.connect(path)
    connection.execute(ORIGINAL_SCHEMA)
    connection.executemany(
        "INSERT INTO port_configurations (model, app_num, backend_port, frontend_port, is_available) "
        "VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    connection.commit()
    connection.close()
    return path


EXPECTED_REPORT = """\
Imported 10 rows from {db} (SQLite port_configurations table): 2 imported, 1 already in the ledger, 7 skipped.
  2 skipped: refused by the policy
  1 skipped: port clashes with another imported row
  1 skipped: port already in the ledger
  1 skipped: released in the source
  1 skipped: key already holds other ports
  1 skipped: invalid row
  id 3 model_c/1 5003/8005: port 5003 is taken by model_b/1 (backend), imported from an earlier row
  id 4 model_d/1 5007/8001: port 8001 is held by model_a/1 (frontend)
  id 5 model_e/1 5061/8061: 5061 is a port browsers refuse to connect to (the policy skips them)
  id 6 model_f/1 4000/8013: backend 4000 is outside the policy's backend range 5001-8000
  id 7 model_g/1 5015/8015: is_available is 1: the old database had released this pair
  id 8 model_h/1 5017/8017: the ledger already gives it 5005/8005; not overwritten
  id 9 model_i/0 5019/8019: app_num must be a whole number from 1 to 1,000,000, not 0
"""


@pytest.fixture
def seeded(run_cli: RunCli, new_ledger: Path) -> None:
    assert run_cli("get-many", input="model_a 1\nmodel_x 1\nmodel_h 1\n").exit_code == 0
    assert run_cli("release", "model_x", "1").exit_code == 0
    # Now: model_a/1 5001/8001 and model_h/1 5005/8005 (5003 and 5007 are free again).


def test_sqlite_import_exact_report(seeded: None, run_cli: RunCli, tmp_path: Path, ledger_path: Path) -> None:
    db = make_database(tmp_path / "old.db")
    db_bytes = db.read_bytes()
    before = ledger_path.read_bytes()
    released = ("--released-when", "is_available=1")
    dry = run_cli("import", str(db), *released, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout == EXPECTED_REPORT.format(db=db).replace("Imported", "Would import") + (
        "Nothing written (--dry-run).\n"
    )
    assert ledger_path.read_bytes() == before

    result = run_cli("import", str(db), *released)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == EXPECTED_REPORT.format(db=db)
    ledger = parse_ledger(ledger_path.read_bytes(), ledger_path)
    assert [(a.label(), a.backend, a.frontend) for a in ledger.allocations] == [
        ("model_a/1", 5001, 8001),
        ("model_b/1", 5003, 8003),
        ("model_h/1", 5005, 8005),
        ("model_j/2", 5021, 8021),
    ]
    assert db.read_bytes() == db_bytes  # opened read-only: the old database is untouched

    # Importing again changes nothing: the imported rows are now kept.
    again = run_cli("import", str(db), *released, "--json")
    report = json.loads(again.stdout)
    assert (report["imported"], report["kept"], report["skipped"]) == (0, 3, 7)
    assert report["format"] == "sqlite" and report["rows"] == 10
    assert report["skipped_by_reason"]["port already in the ledger"] == 2  # model_c now clashes with the ledger
    assert report["skipped_rows"][0] == {
        "where": "id 3",
        "model": "model_c",
        "app_num": 1,
        "backend": 5003,
        "frontend": 8005,
        "why": "port already in the ledger",
        "reason": "port 5003 is held by model_b/1 (backend)",
    }


def test_sqlite_without_the_table_is_an_error(run_cli: RunCli, tmp_path: Path, ledger_path: Path) -> None:
    db = tmp_path / "other.db"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE apps (id INTEGER)")
    connection.commit()
    connection.close()
    result = run_cli("import", str(db))
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert "has no readable port_configurations table" in result.stderr
    assert not ledger_path.exists()


@pytest.mark.usefixtures("new_ledger")
def test_port_config_and_ledger_sources(run_cli: RunCli, tmp_path: Path, ledger_path: Path) -> None:
    config = tmp_path / "port_config.json"
    config.write_text(
        json.dumps(
            [
                {"model": "m", "app_number": 1, "backend_port": 5101, "frontend_port": 8101, "note": "ignored"},
                {"model": "m", "app_number": 2, "backend_port": 5101, "frontend_port": 8103},
                "not an object",
            ]
        )
    )
    result = run_cli("import", str(config), "--json")
    report = json.loads(result.stdout)
    assert (report["format"], report["imported"], report["skipped"]) == ("port-config", 1, 2)
    assert [row["why"] for row in report["skipped_rows"]] == ["port clashes with another imported row", "invalid row"]

    other = Ledger(allocations=[Allocation(model="team_b", app_num=1, backend=5001, frontend=8001)])
    other_path = tmp_path / "theirs.json"
    other_path.write_bytes(dump_ledger(other))
    merged = run_cli("import", str(other_path))
    assert merged.stdout.startswith(f"Imported 1 rows from {other_path} (portalloc ledger): 1 imported")
    assert parse_ledger(ledger_path.read_bytes(), ledger_path).find("team_b", 1) is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello", "is neither an SQLite database, JSON nor an exported CSV"),
        (b'{"a": 1}', "neither a port_config.json list, an export nor a ledger"),
        (b'{"version": 1, "allocations": 5}', "is not a valid ledger"),
    ],
)
def test_unreadable_sources(run_cli: RunCli, tmp_path: Path, ledger_path: Path, content: bytes, message: str) -> None:
    source = tmp_path / "source"
    source.write_bytes(content)
    result = run_cli("import", str(source))
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert message in result.stderr
    assert not ledger_path.exists()


def test_pair_refusal_rules() -> None:
    ledger = Ledger(allocations=[Allocation(model="a", app_num=1, backend=5001, frontend=8001)])
    assert pair_refusal(ledger, ("b", 1), (5003, 8003)) is None
    assert pair_refusal(ledger, ("a", 1), (5001, 8001)) is None  # its own row does not count
    assert pair_refusal(ledger, ("b", 1), (5001, 8005)) == "port 5001 is held by a/1 (backend)"
    assert pair_refusal(ledger, ("b", 1), (8001, 8003)) is not None  # a backend in the frontend range
    assert pair_refusal(ledger, ("b", 1), (5003, 5005)) is not None
    assert "browsers" in (pair_refusal(ledger, ("b", 1), (6000, 9000)) or "")
    lenient = Ledger(policy=ledger.policy.model_copy(update={"skip_bad_ports": False}))
    assert pair_refusal(lenient, ("b", 1), (6000, 9000)) is None


_ROW = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]),
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=4990, max_value=5070),
    st.integers(min_value=7990, max_value=8070),
)


@settings(max_examples=100, deadline=None)
@given(
    existing=st.lists(st.tuples(st.sampled_from(["a", "x"]), st.integers(1, 4)), max_size=6),
    rows=st.lists(_ROW, max_size=25),
)
def test_plan_import_never_adds_a_conflict_or_touches_an_allocation(
    existing: list[tuple[str, int]], rows: list[tuple[str, int, int, int]]
) -> None:
    ledger, _ = assign_many(Ledger(), existing)
    source = [ImportRow(f"row {n}", *row) for n, row in enumerate(rows, start=1)]
    result, report = plan_import(ledger, source)
    assert find_conflicts(result.allocations) == []
    for allocation in ledger.allocations:
        assert result.find(*allocation.key) == allocation
    assert len(report.outcomes) == len(rows)
    imported = [o.row for o in report.outcomes if o.status == "imported"]
    assert len(result.allocations) == len(ledger.allocations) + len(imported)
    for row in imported:
        found = result.find(row.model, row.app_num)
        assert found is not None and found.ports == (row.backend, row.frontend)
        assert pair_refusal(ledger, found.key, found.ports) is None
    assert sum(report.skipped_by_reason().values()) == report.count("skipped")


def test_a_fifo_is_refused_without_blocking(run_cli: RunCli, tmp_path: Path, ledger_path: Path) -> None:
    fifo = tmp_path / "old.db"
    os.mkfifo(fifo)
    result = run_cli("import", str(fifo))
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert "is not a regular file (a FIFO)" in result.stderr
    assert not ledger_path.exists()


def test_a_large_import_against_a_wide_reservation(tmp_path: Path) -> None:
    """Every row on a reserved port is skipped as reserved, and the reservation is expanded once, not per row."""
    import subprocess

    from tests.conftest import portalloc_script, subprocess_env

    ledger = tmp_path / "portalloc.json"
    script, env = portalloc_script(), subprocess_env()
    for argv in (["init", str(ledger)], ["--ledger", str(ledger), "reserve", "1024-65535"]):
        subprocess.run([script, *argv], env=env, check=True, capture_output=True)
    rows = [
        {"model": "m", "app_number": n, "backend_port": 5001 + 2 * n, "frontend_port": 8001 + 2 * n}
        for n in range(1, 1401)  # all inside the backend range
    ]
    source = tmp_path / "port_config.json"
    source.write_text(json.dumps(rows))
    before = ledger.read_bytes()
    done = subprocess.run(
        [script, "--ledger", str(ledger), "import", "--json", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["rows"], report["imported"], report["skipped"]) == (1400, 0, 1400)
    reasons = {row["reason"].split(" is ", 1)[1] for row in report["skipped_rows"]}
    assert reasons == {"reserved", "a port browsers refuse to connect to (the policy skips them)"}
    assert ledger.read_bytes() == before


def test_a_row_whose_ports_another_ledger_leases_here_is_kept_and_reported(
    run_cli: RunCli, new_ledger: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other" / "portalloc.json"
    other.parent.mkdir()
    assert run_cli("--ledger", str(other), "init").exit_code == 0
    assert run_cli("--ledger", str(other), "get", "x", "1").stdout == "x/1: backend 5001, frontend 8001\n"
    source = tmp_path / "ports.csv"
    source.write_text("model,app_num,backend,frontend\nold,1,5001,8001\nold,2,5009,8009\n")
    dry = run_cli("import", str(source), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["noted_rows"] == [
        {
            "where": "line 2",
            "model": "old",
            "app_num": 1,
            "backend": 5001,
            "frontend": 8001,
            "why": "port leased on this machine to another ledger's key",
            "reason": f"port 5001 of old/1 is also leased to x/1 of {other}; "
            f"port 8001 of old/1 is also leased to x/1 of {other}",
        }
    ]
    done = run_cli("import", str(source))
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        "  1 were imported with a note: port leased on this machine to another ledger's key",
        f"  line 2 old/1 5001/8001: port 5001 of old/1 is also leased to x/1 of {other}; "
        f"port 8001 of old/1 is also leased to x/1 of {other}",
    ]  # on main: imported without a word
    assert run_cli("get", "old", "1").stdout == "old/1: backend 5001, frontend 8001\n"  # kept, never dropped
