"""``portalloc dotenv`` and the ``.env`` block editing behind it (``portalloc.integrations.envfile``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from portalloc import PortAllocationService
from portalloc.errors import EnvFileError
from portalloc.integrations.composefiles import read_variables
from portalloc.integrations.envfile import assignments, block_label, update_block
from tests.conftest import RunCli, obey_file_permissions, portalloc_script, subprocess_env

VARS = {"BACKEND_PORT": "5001", "FRONTEND_PORT": "8001"}
BLOCK = b"# >>> portalloc: model_a/1 >>>\nBACKEND_PORT=5001\nFRONTEND_PORT=8001\n# <<< portalloc <<<\n"

# Lines a user may have: comments, blanks, quotes, spaces, CRLF, a non-UTF-8 byte, no final newline.
UNRELATED = [
    b"# my settings\n",
    b"\n",
    b"DATABASE_URL='postgres://u:p@h/db'  \n",
    b'export SECRET="a b c" # note\r\n',
    b"   INDENTED = yes\n",
    b"LATIN1=caf\xe9\n",
]


def test_new_block_goes_after_the_leading_comment_and_every_other_byte_is_kept() -> None:
    original = b"".join(UNRELATED) + b"LAST=1"  # no final newline: it stays missing
    updated = update_block(original, "model_a/1", VARS)
    assert updated == b"".join(UNRELATED[:2]) + BLOCK + b"".join(UNRELATED[2:]) + b"LAST=1"


def test_new_block_after_a_bom_and_in_a_file_of_comments_only() -> None:
    assert update_block(b"\xef\xbb\xbfA=1\n", "model_a/1", VARS) == b"\xef\xbb\xbf" + BLOCK + b"A=1\n"
    assert update_block(b"# only\n", "model_a/1", VARS) == b"# only\n" + BLOCK
    assert update_block(b"# no newline", "model_a/1", VARS) == BLOCK + b"# no newline"


def test_block_is_replaced_in_place_and_other_lines_kept_byte_for_byte() -> None:
    before, after = b"".join(UNRELATED[:3]), b"".join(UNRELATED[3:]) + b"TAIL=x"
    old_block = b"# >>> portalloc: model_a/1 >>>\nBACKEND_PORT=1\nSTALE=2\n# <<< portalloc <<<\n"
    updated = update_block(before + old_block + after, "model_b/2", {"BACKEND_PORT": "5003", "FRONTEND_PORT": "8003"})
    new_block = b"# >>> portalloc: model_b/2 >>>\nBACKEND_PORT=5003\nFRONTEND_PORT=8003\n# <<< portalloc <<<\n"
    assert updated == before + new_block + after
    assert update_block(updated, "model_b/2", {"BACKEND_PORT": "5003", "FRONTEND_PORT": "8003"}) == updated


def test_crlf_file_gets_a_crlf_block() -> None:
    updated = update_block(b"A=1\r\nB=2\r\n", "m/1", VARS)
    assert updated == BLOCK.replace(b"\n", b"\r\n").replace(b"model_a/1", b"m/1") + b"A=1\r\nB=2\r\n"


def test_empty_file() -> None:
    assert update_block(b"", "model_a/1", VARS) == BLOCK


@pytest.mark.parametrize(
    "damaged",
    [
        b"# >>> portalloc: m/1 >>>\nBACKEND_PORT=1\n",  # no end
        b"BACKEND_PORT=1\n# <<< portalloc <<<\n",  # no begin
        b"# <<< portalloc <<<\n# >>> portalloc: m/1 >>>\n",  # wrong order
        BLOCK + b"X=1\n" + BLOCK,  # two blocks
    ],
)
def test_damaged_block_is_an_error(damaged: bytes) -> None:
    with pytest.raises(EnvFileError, match="portalloc block"):
        update_block(damaged, "m/1", VARS, where="app/.env")


def test_block_label_and_assignments() -> None:
    data = b"".join(UNRELATED) + BLOCK + b"BACKEND_PORT=3000\n"
    assert block_label(data) == "model_a/1"
    assert block_label(b"A=1\n") is None
    found = assignments(data)
    assert found["DATABASE_URL"] == (3, "postgres://u:p@h/db")
    assert found["SECRET"] == (4, "a b c")
    assert found["INDENTED"] == (5, "yes")
    assert found["LATIN1"] == (6, "caf\ufffd")  # read, not refused, as compose reads it
    assert found["BACKEND_PORT"] == (11, "3000")  # the last one wins, as loaders do
    assert assignments(data, outside_block=True)["BACKEND_PORT"] == (11, "3000")
    assert "FRONTEND_PORT" not in assignments(data, outside_block=True)


@pytest.mark.usefixtures("new_ledger")
def test_dotenv_command_creates_then_updates(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    created = run_cli("dotenv", "model_a", "1", str(env_file))
    assert created.exit_code == 0, created.stderr
    pair = json.loads(run_cli("get", "--json", "model_a", "1").stdout)
    assert created.stdout.startswith(f"Created {env_file}: BACKEND_PORT={pair['backend']} ")
    user_lines = b"# mine\r\nKEEP=\xff\n"
    env_file.write_bytes(user_lines + env_file.read_bytes() + b"AFTER=1")
    os.chmod(env_file, 0o600)
    again = run_cli("dotenv", "model_a", "1", str(env_file))
    assert again.stdout.endswith("unchanged.\n")
    refused = run_cli("dotenv", "model_b", "1", str(env_file), "--prefix", "API_")
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"Error: {env_file} holds the portalloc block of model_a/1; one file holds one app's block "
        "(pass --replace to give it to model_b/1)\n",
    )
    updated = run_cli("dotenv", "model_b", "1", str(env_file), "--prefix", "API_", "--replace")
    assert updated.exit_code == 0 and updated.stdout.startswith(f"Updated {env_file}: API_BACKEND_PORT=")
    data = env_file.read_bytes()
    # The block keeps the line ending it was written with; the user's lines keep theirs.
    assert data.startswith(user_lines + b"# >>> portalloc: model_b/1 >>>\nAPI_BACKEND_PORT=")
    assert data.endswith(b"# <<< portalloc <<<\nAFTER=1")
    assert os.stat(env_file).st_mode & 0o777 == 0o600  # atomic replace keeps the permission bits


@pytest.mark.usefixtures("new_ledger")
def test_dotenv_warns_about_the_same_variable_outside_the_block(run_cli: RunCli, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BACKEND_PORT=3000\n")
    result = run_cli("dotenv", "model_a", "1", str(env_file))
    assert result.exit_code == 0
    assert result.stderr.startswith(f"Warning: {env_file} also sets BACKEND_PORT=3000 on line 5, outside")


@pytest.mark.usefixtures("new_ledger")
def test_damaged_file_is_not_written_and_nothing_allocated(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    damaged = b"A=1\n# >>> portalloc: m/1 >>>\nB=2\n"
    env_file.write_bytes(damaged)
    run_cli("get", "model_a", "1")
    ledger_before = ledger_path.read_bytes()
    assert run_cli("dotenv", "model_b", "1", str(env_file)).exit_code == 1  # a new key is not allocated either
    result = run_cli("dotenv", "model_a", "1", str(env_file))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {env_file} has a damaged portalloc block at line 2 " + (
        "(expected one '# >>> portalloc: … >>>' line followed by one '# <<< portalloc <<<' line)\n"
    )
    assert env_file.read_bytes() == damaged
    assert ledger_path.read_bytes() == ledger_before


def test_missing_directory_is_an_error_before_allocating(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    result = run_cli("dotenv", "model_a", "1", str(tmp_path / "nope" / ".env"))
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: cannot write {tmp_path / 'nope' / '.env'}: the directory {tmp_path / 'nope'} does not exist\n",
    )
    assert not ledger_path.exists()


@pytest.mark.usefixtures("new_ledger")
def test_a_reference_below_the_new_block_resolves_in_python_dotenv_and_compose(run_cli: RunCli, tmp_path: Path) -> None:
    from dotenv import dotenv_values

    env_file = tmp_path / ".env"
    env_file.write_bytes(b"# app settings\nAPI_URL=http://localhost:${BACKEND_PORT}/api\n")
    assert run_cli("dotenv", "model_a", "1", str(env_file)).exit_code == 0
    assert dotenv_values(env_file)["API_URL"] == "http://localhost:5001/api"
    assert read_variables(env_file, required=True, environ={})["API_URL"] == "http://localhost:5001/api"


@pytest.mark.compose
@pytest.mark.usefixtures("new_ledger")
def test_compose_reads_the_reference_below_the_block(run_cli: RunCli, tmp_path: Path) -> None:
    from tests.compose_judge import compose_published

    (tmp_path / ".env").write_bytes(b"WEB_PORT=${FRONTEND_PORT}\n")
    assert run_cli("dotenv", "model_a", "1", str(tmp_path / ".env")).exit_code == 0
    compose = tmp_path / "compose.yaml"
    compose.write_text('services:\n  web:\n    image: x\n    ports: ["${WEB_PORT}:80"]\n')
    assert compose_published(compose) == {("web", "", 8001, 8001, "tcp")}


@pytest.mark.usefixtures("new_ledger")
def test_a_block_the_user_moved_stays_and_references_above_it_are_warned(run_cli: RunCli, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"URL=http://localhost:${BACKEND_PORT}\nA=1\n" + BLOCK)
    result = run_cli("dotenv", "model_a", "1", str(env_file))
    assert result.exit_code == 0
    assert env_file.read_bytes() == b"URL=http://localhost:${BACKEND_PORT}\nA=1\n" + BLOCK
    assert result.stderr == (
        f"Warning: {env_file} line 1 refers to BACKEND_PORT above the portalloc block; loaders expand it from "
        "lines above only, so it reads as empty (move the block up)\n"
    )


def test_utf16_file_is_refused_before_allocating(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    utf16 = "A=1\r\n".encode("utf-16")  # what PowerShell 5's Out-File writes
    env_file.write_bytes(utf16)
    result = run_cli("dotenv", "model_a", "1", str(env_file))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {env_file} is not UTF-8 (it looks like UTF-16")
    assert env_file.read_bytes() == utf16 and not ledger_path.exists()


def test_a_device_is_refused_and_left_alone(run_cli: RunCli, ledger_path: Path) -> None:
    before = os.stat("/dev/null")
    result = run_cli("dotenv", "model_a", "1", "/dev/null")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: .env file /dev/null is not a regular file (a character device); refusing to read it\n",
    )
    after = os.stat("/dev/null")
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode) and not ledger_path.exists()


@pytest.mark.parametrize("what", ["directory", "file"])
def test_an_unwritable_target_is_refused_before_allocating(tmp_path: Path, what: str) -> None:
    """Run as a real process that obeys permission bits (root's override dropped), as a user would meet it."""
    ledger_path = tmp_path / "portalloc.json"
    PortAllocationService(ledger_path, probe=False).get_or_allocate_ports("model_a", 1)
    ledger_before = ledger_path.read_bytes()
    target_dir = tmp_path / "app"
    target_dir.mkdir()
    env_file = target_dir / ".env"
    env_file.write_bytes(b"A=1\n")
    (target_dir if what == "directory" else env_file).chmod(0o555 if what == "directory" else 0o444)
    result = subprocess.run(
        [portalloc_script(), "--ledger", str(ledger_path), "dotenv", "model_b", "1", str(env_file)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        preexec_fn=obey_file_permissions,
    )
    target_dir.chmod(0o755)
    assert (result.returncode, result.stderr) == (
        1,
        f"Error: cannot write {env_file}: permission denied (nothing was allocated)\n",
    )
    assert ledger_path.read_bytes() == ledger_before and env_file.read_bytes() == b"A=1\n"
