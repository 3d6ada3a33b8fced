"""What commands share: the table printer (columns in terminal cells) and the files they may write."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from portalloc.cli.output import MAX_COLUMN_WIDTH, display_width
from tests.conftest import RunCli, subprocess_env
from tests.reliability.processes import portalloc_script


@pytest.mark.parametrize(
    ("text", "width"),
    [("model_a", 7), ("caf\u00e9", 4), ("cafe\u0301", 4), ("\u30e2\u30c7\u30eb", 6), ("\uff21", 2), ("", 0)],
)
def test_display_width(text: str, width: int) -> None:
    assert display_width(text) == width


@pytest.mark.usefixtures("new_ledger")
def test_list_aligns_wide_and_combined_names(run_cli: RunCli) -> None:
    for model in ("model_a", "\u30e2\u30c7\u30eb", "caf\u00e9"):
        run_cli("get", model, "1")
    lines = run_cli("list").stdout.splitlines()
    # Every APP cell ends in the same terminal column, whatever the model's script.
    assert {display_width(line.split("  1 ")[0]) for line in lines[1:]} == {display_width(lines[0].split("APP")[0])}
    assert lines[1:] == [
        "caf\u00e9       1     5005      8005",
        "model_a    1     5001      8001",
        "\u30e2\u30c7\u30eb     1     5003      8003",
    ]


@pytest.mark.usefixtures("new_ledger")
def test_one_long_name_does_not_pad_every_row(run_cli: RunCli) -> None:
    long_name = "m" * 200
    for model in ("a", long_name, "b"):
        run_cli("get", model, "1")
    lines = run_cli("list").stdout.splitlines()
    assert lines[0] == "MODEL  APP  BACKEND  FRONTEND"
    assert lines[1] == "a        1     5001      8001"
    assert lines[2] == "b        1     5005      8005"
    assert lines[3] == f"{long_name}    1     5003      8003"
    assert max(map(len, lines[:3])) < MAX_COLUMN_WIDTH


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
