"""The command line's parameters: the files commands may write, ``--json`` beside ``--format``, app numbers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RunCli, subprocess_env
from tests.reliability.processes import portalloc_script

# Every command that writes a file the user names, pointed at the ledger or its lock file in
# a real repository, the way a slip of the shell's tab completion does.
_WRITERS = [
    ("export", "-o", "{target}"),
    ("dotenv", "m", "2", "{target}"),
    ("history", "--png", "{target}"),
]


@pytest.mark.parametrize("command", _WRITERS, ids=[argv[0] for argv in _WRITERS])
@pytest.mark.parametrize("target", ["./sub/../portalloc.json", "hard.json", "portalloc.json.lock"])
def test_no_command_writes_over_the_ledger_or_its_lock(tmp_path: Path, command: tuple[str, ...], target: str) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "sub").mkdir()
    script = portalloc_script()
    env = subprocess_env()
    for argv in (["init"], ["get", "m", "1"]):
        subprocess.run([script, *argv], cwd=tmp_path, env=env, check=True, capture_output=True)
    for argv in (["add", "portalloc.json"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m/1"]):
        subprocess.run(["git", *argv], cwd=tmp_path, env=env, check=True, capture_output=True)
    ledger = tmp_path / "portalloc.json"
    os.link(ledger, tmp_path / "hard.json")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    argv = [part.format(target=target) for part in command]
    done = subprocess.run([script, *argv], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done
    assert done.stderr.startswith("Error: ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert "is the ledger" in done.stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()} == before
    # Elsewhere the same command writes (once the ledger has one name again: a linked ledger is refused).
    (tmp_path / "hard.json").unlink()
    argv = [part.format(target="out.file") for part in command]
    done = subprocess.run([script, *argv], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.file").stat().st_size > 0


# Every command whose output has a --format, with a format that is neither JSON nor its default.
_FORMATTED = [(("stats",), "prometheus"), (("diff",), "markdown"), (("env", "m", "1"), "dotenv"), (("export",), "csv")]


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize(("command", "other"), _FORMATTED, ids=[words[0] for words, _ in _FORMATTED])
def test_json_beside_another_format_is_a_usage_error_in_every_command(
    run_cli: RunCli, command: tuple[str, ...], other: str
) -> None:
    for argv in ((*command, "--json", "--format", other), (*command, "--format", other, "--json")):
        result = run_cli(*argv)
        assert result.exit_code == 2, (argv, result.stdout, result.stderr)
        assert result.stderr.startswith(f"Error: --json and --format {other} go against each other")
        assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.parametrize("command", [("stats",), ("env", "m", "1"), ("export",)])
def test_json_is_short_for_format_json(run_cli: RunCli, command: tuple[str, ...]) -> None:
    run_cli("get", "m", "1")
    short, long = run_cli(*command, "--json"), run_cli(*command, "--format", "json")
    assert (short.exit_code, long.exit_code) == (0, 0)
    assert short.stdout == long.stdout and json.loads(short.stdout)
