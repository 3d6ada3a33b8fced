"""Batches: ``get-many``, ``release-many``, ``release --model``/``--json`` and the key-list reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from portalloc.cli.keylist import parse_keys
from portalloc.errors import BatchInputError
from portalloc.service.facade import PortAllocationService
from portalloc.storage.codec import parse_ledger
from tests.cli.test_cli import assert_one_error_line
from tests.conftest import RunCli, portalloc_script, subprocess_env


def test_three_formats_give_the_same_keys() -> None:
    lines = b"# batch\nmodel_a 1\n\nopenai gpt 4o 2\n"
    jsonl = b'{"model": "model_a", "app_num": 1}\n{"model": "openai gpt 4o", "app_num": 2, "backend": 1}\n'
    array = b'[{"model": "model_a", "app_num": 1},\n {"model": "openai gpt 4o", "app_num": 2}]'
    expected = [("model_a", 1), ("openai gpt 4o", 2)]
    for data in (lines, jsonl, array):
        assert parse_keys(data, "batch") == expected
    assert parse_keys(lines, "batch", "lines") == expected


def test_every_bad_line_is_named_with_its_number() -> None:
    data = b"model_a 1\nmodel_b x\nlonely\n../up 3\nmodel_c 0\nmodel_d 4\n"
    with pytest.raises(BatchInputError) as caught:
        parse_keys(data, "keys.txt")
    message = str(caught.value)
    assert message.startswith("keys.txt has 4 bad lines, nothing done: line 2: ")
    for number in (2, 3, 4, 5):
        assert f"line {number}: " in message
    assert "line 1:" not in message and "line 6:" not in message


def test_json_array_problems_name_the_line_each_object_starts_on() -> None:
    data = b'[\n  {"model": "a", "app_num": 1},\n  {"model": "b"},\n\n  {"model": "c", "app_num": "2"}\n]'
    with pytest.raises(BatchInputError) as caught:
        parse_keys(data, "keys.json")
    assert "line 3: missing app_num" in str(caught.value)
    assert "line 5: app_num must be a whole number from 1 to 1,000,000, not '2'" in str(caught.value)


@pytest.mark.usefixtures("new_ledger")
def test_get_many_prints_gets_format_and_json_list(run_cli: RunCli) -> None:
    result = run_cli("get-many", input="model_a 1\nmodel_b 1\nmodel_a 1\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "model_a/1: backend 5001, frontend 8001\n"
        "model_b/1: backend 5003, frontend 8003\n"
        "model_a/1: backend 5001, frontend 8001\n"
    )
    # list --json feeds back in, and --json gives the list in input order, existing keys included.
    listed = run_cli("list", "--json").stdout
    again = run_cli("get-many", "--json", "-", input=listed + "\n")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(listed)


@pytest.mark.usefixtures("new_ledger")
def test_get_many_bad_line_writes_nothing(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("get", "model_a", "1")
    before = ledger_path.read_bytes()
    result = run_cli("get-many", input="model_b 1\nmodel_c one\n")
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert "line 2: app_num must be a whole number from 1 to 1,000,000, not 'one'" in result.stderr
    assert ledger_path.read_bytes() == before


@pytest.mark.usefixtures("new_ledger")
def test_get_many_reads_a_file_and_refuses_a_fifo(run_cli: RunCli, tmp_path: Path, ledger_path: Path) -> None:
    batch = tmp_path / "batch.txt"
    batch.write_text("model_a 1\nmodel_a 2\n")
    assert run_cli("get-many", str(batch)).exit_code == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = run_cli("get-many", str(fifo))
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert "not a regular file (a FIFO)" in result.stderr
    missing = run_cli("get-many", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


@pytest.mark.usefixtures("new_ledger")
def test_allocate_many_is_what_get_many_runs(tmp_path: Path, run_cli: RunCli, ledger_path: Path) -> None:
    keys = [(f"model_{i % 3}", i) for i in range(1, 40)]
    api = PortAllocationService(tmp_path / "api.json", probe=False)
    api.allocate_many(keys)
    run_cli("get-many", input="".join(f"{m} {n}\n" for m, n in keys))
    assert ledger_path.read_bytes() == (tmp_path / "api.json").read_bytes()


@pytest.mark.usefixtures("new_ledger")
def test_release_many_and_release_model(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("get-many", input="model_a 1\nmodel_a 2\nmodel_b 1\nmodel_c 1\n")
    result = run_cli(
        "release-many", "--json", input='{"model": "model_a", "app_num": 1}\n{"model": "zz", "app_num": 9}\n'
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"model": "model_a", "app_num": 1, "backend": 5001, "frontend": 8001}]
    assert result.stderr == "Note: zz/9 had no allocation\n"
    none = run_cli("release-many", input="zz 9\n")
    assert none.exit_code == 1 and "none of the 1 keys has an allocation" in none.stderr

    whole = run_cli("release", "--model", "model_a")
    assert whole.exit_code == 0
    assert whole.stdout == "Released model_a/2 (5003/8003).\n"
    assert [a.key for a in parse_ledger(ledger_path.read_bytes(), ledger_path).allocations] == [
        ("model_b", 1),
        ("model_c", 1),
    ]
    again = run_cli("release", "--model", "model_a")
    assert again.exit_code == 1
    assert_one_error_line(again.stderr)

    single = run_cli("release", "model_b", "1", "--json")
    assert json.loads(single.stdout) == {"model": "model_b", "app_num": 1, "backend": 5005, "frontend": 8005}


def test_release_usage_errors(run_cli: RunCli) -> None:
    for args in (("release",), ("release", "model_a", "1", "--model", "model_a"), ("release", "model_a")):
        result = run_cli(*args)
        assert result.exit_code == 2, args
        assert_one_error_line(result.stderr)


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to count the ledger's renames")
def test_a_thousand_keys_are_one_ledger_write(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    trace = tmp_path / "trace"
    batch = "".join(f"model_{i % 10} {i}\n" for i in range(1, 1001))
    done = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=rename,renameat,renameat2", "-o", str(trace),
         portalloc_script(), "--ledger", str(ledger), "get-many", "-"],
        input=batch, capture_output=True, text=True, env=subprocess_env(), check=False,
    )  # fmt: skip
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1000
    renames = [line for line in trace.read_text().splitlines() if "portalloc.json" in line]
    assert len(renames) == 1, renames
    assert renames[0].rstrip().endswith("= 0")
    assert len(parse_ledger(ledger.read_bytes(), ledger).allocations) == 1000


@pytest.mark.usefixtures("new_ledger")
def test_an_empty_batch_does_nothing_and_takes_no_lock(run_cli: RunCli, ledger_path: Path) -> None:
    for command in ("get-many", "release-many"):
        text = run_cli(command, input="# no apps today\n\n")
        assert (text.exit_code, text.stdout) == (0, ""), text.stderr
        as_json = run_cli(command, "--json", input="")
        assert (as_json.exit_code, json.loads(as_json.stdout)) == (0, [])
    assert [path.name for path in ledger_path.parent.iterdir()] == [ledger_path.name]  # no lock file


@pytest.mark.parametrize("command", ["get-many", "release-many"])
def test_an_empty_batch_still_refuses_a_ledger_that_is_not_valid(
    run_cli: RunCli, ledger_path: Path, command: str
) -> None:
    ledger_path.write_text('{"version": 1, "allocations": [')
    done = run_cli(command, input="")
    assert done.exit_code == 1
    assert done.stderr.startswith("Error: ") and "is not valid JSON" in done.stderr
    assert ledger_path.read_text() == '{"version": 1, "allocations": ['
