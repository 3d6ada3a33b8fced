"""``portalloc export``: port_config.json, CSV and JSON out, and back in through import and --config."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from portalloc.storage.preconfig import load_preconfig
from tests.cli.test_cli import assert_one_error_line
from tests.conftest import RunCli


def _seed(run_cli: RunCli) -> None:
    assert run_cli("get-many", input='model_b 1\nmodel_a 2\nmodel, "quoted" 3\n').exit_code == 0


@pytest.mark.usefixtures("new_ledger")
def test_formats(run_cli: RunCli) -> None:
    _seed(run_cli)
    listed = run_cli("list", "--json").stdout
    assert json.loads(run_cli("export").stdout) == json.loads(listed)

    rows = list(csv.reader(run_cli("export", "--format", "csv").stdout.splitlines()))
    assert rows == [
        ["model", "app_num", "backend", "frontend"],
        ['model, "quoted"', "3", "5005", "8005"],
        ["model_a", "2", "5003", "8003"],
        ["model_b", "1", "5001", "8001"],
    ]

    config = json.loads(run_cli("export", "--format", "port-config", "--model", "model_a").stdout)
    assert config == [{"model": "model_a", "app_number": 2, "backend_port": 5003, "frontend_port": 8003}]


@pytest.mark.usefixtures("new_ledger")
def test_port_config_round_trips(run_cli: RunCli, tmp_path: Path, ledger_path: Path) -> None:
    _seed(run_cli)
    out = tmp_path / "out" / "port_config.json"
    out.parent.mkdir()
    out.write_text("old")
    os.chmod(out, 0o640)
    result = run_cli("export", "--format", "port-config", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == f"Wrote 3 allocations to {out}.\n"
    assert os.stat(out).st_mode & 0o777 == 0o640  # replaced atomically, mode kept
    assert load_preconfig(out) == {
        ('model, "quoted"', 3): (5005, 8005),
        ("model_a", 2): (5003, 8003),
        ("model_b", 1): (5001, 8001),
    }

    fresh = tmp_path / "fresh.json"
    assert run_cli("--ledger", str(fresh), "init").exit_code == 0
    imported = run_cli("--ledger", str(fresh), "import", str(out), "--json")
    assert json.loads(imported.stdout)["imported"] == 3
    assert fresh.read_bytes() == ledger_path.read_bytes()


@pytest.mark.usefixtures("new_ledger")
def test_unwritable_output(run_cli: RunCli, tmp_path: Path) -> None:
    _seed(run_cli)
    result = run_cli("export", "-o", str(tmp_path / "missing" / "x.json"))
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
