"""What the fast command-line paths import: ``--help`` and ``get`` of an existing key stay light.

Each check runs the command in a fresh interpreter and reads ``sys.modules`` at exit:
neither pydantic nor filelock may be imported, and ``get`` imports no other command's
module. ``get`` of a new key does import pydantic, which shows the check can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from portalloc.cli.catalog import COMMANDS
from portalloc.cli.lazy import SUMMARY_LIMIT
from portalloc.cli.main import cli
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.storage.codec import dump_ledger
from tests.conftest import subprocess_env

RUN_AND_LIST_MODULES = """
import json, sys
from portalloc.cli.main import COMMANDS, cli
try:
    cli.main(args=sys.argv[1:], prog_name="portalloc")
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""

HEAVY = ("pydantic", "pydantic_core", "filelock")


def modules_after(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, *args], capture_output=True, text=True, env=subprocess_env()
    )
    marker = done.stderr.rsplit("\nMODULES ", 1)
    assert len(marker) == 2, done.stderr
    return set(json.loads(marker[1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY)


def test_help_imports_neither_pydantic_nor_filelock_nor_any_command() -> None:
    modules = modules_after("--help")
    assert heavy(modules) == []
    assert not {name for name in modules if name.startswith("portalloc.cli.commands.")}


def test_each_summary_in_the_table_is_its_commands_own() -> None:
    """``--help`` lists the table's summaries: each is what click would take from the command's docstring."""
    ctx = click.Context(cli)
    for name, entry in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and not command.hidden
        assert entry.summary == command.get_short_help_str(limit=SUMMARY_LIMIT), name


def test_get_of_an_existing_key_imports_neither_pydantic_nor_filelock_nor_other_commands(ledger_path: Path) -> None:
    policy = PortPolicy(backend_start=29001, frontend_start=29501)  # ports nothing on a test machine holds
    ledger_path.write_bytes(
        dump_ledger(
            Ledger(policy=policy).with_allocations([Allocation(model="m", app_num=1, backend=29001, frontend=29501)])
        )
    )
    allocating = modules_after("--ledger", str(ledger_path), "--no-probe", "get", "m", "2")
    assert heavy(allocating) and "sqlite3" in allocating  # allocates: heavy, and leases the pair
    modules = modules_after("--ledger", str(ledger_path), "get", "m", "1")
    assert heavy(modules) == []
    assert "logging" not in modules
    assert "sqlite3" not in modules  # the host lease store is not opened for a key the ledger holds
    assert "portalloc.integrations.envfile" not in modules  # .env files are read only when a port is held
    commands = {name for name in modules if name.startswith("portalloc.cli.commands.")}
    assert commands == {"portalloc.cli.commands.get"}


def test_every_command_in_the_table_is_found_under_its_own_name() -> None:
    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert names == sorted(COMMANDS) and "get" in names
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert cli.get_command(ctx, name) is command  # imported once


@pytest.mark.parametrize("name", ["get", "list", "check"])
def test_help_lists_the_commands(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portalloc", "--help"], capture_output=True, text=True, env=subprocess_env()
    )
    assert done.returncode == 0
    commands = done.stdout.split("Daily use:", 1)[1].split()
    assert name in commands
