"""``portalloc export``: port_config.json, CSV and JSON out, and back in through import and --config."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portalloc.cli.main import cli
from portalloc.core.allocator import assign_many
from portalloc.core.models import Ledger, PortPolicy
from portalloc.storage.ledger import LedgerFile
from portalloc.storage.preconfig import load_preconfig
from tests.cli.test_cli import assert_one_error_line
from tests.conftest import RunCli


def _seed(run_cli: RunCli) -> None:
    assert run_cli("get-many", input='model_b 1\nmodel_a 2\nmodel, "quoted" 3\n').exit_code == 0


@pytest.mark.usefixtures("new_ledger")
def test_formats(run_cli: RunCli) -> None:
    _seed(run_cli)
    listed = json.loads(run_cli("list", "--committed", "--json").stdout)
    # The committed rows, without list's "worktree" (an export never holds a worktree's own pair).
    assert json.loads(run_cli("export").stdout) == [{k: v for k, v in row.items() if k != "worktree"} for row in listed]

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


_MODELS = st.sampled_from(["model_a", "model_b", 'model, "quoted"', "モデル", "openai/gpt-4o", "a;b=c"])


@st.composite
def _ledgers(draw: st.DrawFn) -> Ledger:
    """A ledger as portalloc builds one: a random policy, keys allocated in turn, some on pre-configured pairs."""
    step = draw(st.integers(min_value=1, max_value=5))
    backend_start = draw(st.integers(min_value=1024, max_value=40000))
    frontend_start = backend_start + step * draw(st.integers(min_value=50, max_value=1500))  # room for 50+ pairs
    policy = PortPolicy(backend_start=backend_start, frontend_start=frontend_start, step=step)
    keys = draw(st.lists(st.tuples(_MODELS, st.integers(min_value=1, max_value=1_000_000)), max_size=30))
    preferred = {
        key: (backend_start + offset, frontend_start + offset)
        for key, offset in zip(keys, draw(st.lists(st.integers(0, 40), max_size=5)), strict=False)
    }
    ledger, _ = assign_many(Ledger(policy=policy), keys, preferred=preferred)
    return ledger


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledger=_ledgers(), fmt=st.sampled_from(["json", "csv", "port-config"]))
def test_every_export_imports_back_identically(ledger: Ledger, fmt: str) -> None:
    """``export --format F`` then ``import`` into a fresh ledger with the same policy: the same ``list --json``."""
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as scratch:
        source, target, exported = Path(scratch, "a.json"), Path(scratch, "b.json"), Path(scratch, "export")
        LedgerFile(source).create(ledger)
        LedgerFile(target).create(Ledger(policy=ledger.policy))
        written = runner.invoke(cli, ["--ledger", str(source), "export", "--format", fmt, "-o", str(exported)])
        assert written.exit_code == 0, written.stderr
        back = runner.invoke(cli, ["--ledger", str(target), "import", str(exported), "--json"])
        assert back.exit_code == 0, back.stderr
        report = json.loads(back.stdout)
        assert report["skipped"] == 0, report["skipped_rows"]
        assert report["format"] == fmt or not ledger.allocations  # an empty list could be either JSON kind
        listed = [runner.invoke(cli, ["--ledger", str(path), "list", "--json"]).stdout for path in (source, target)]
        assert listed[0] == listed[1]
