"""What each command may import: its start-up is most of what a command-line call costs.

Each check runs the command in a fresh interpreter and reads ``sys.modules`` at exit
(``run``'s ``exec`` is stopped just before it happens), against a budget per command:
through the installed entry point, ``--help`` and ``get`` of a key the ledger holds
import neither click nor pydantic nor filelock nor sqlite3 (the quick front door,
``cli.quick``), a ``get`` of a new key neither click nor pydantic, and what the door
declines still runs; through click, ``--help`` imports no
command module; a read (``get``/``env``/``run`` of a key the
ledger holds, with or without reserved ports and pools in its policy) imports neither
pydantic nor filelock nor sqlite3; a ``list`` imports no lock and no lease store; a new
allocation imports filelock and sqlite3 but not pydantic (``Settings.allocated``: the
ledger and a ``port_config.json`` are read into plain values).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from portalloc import PortAllocationService
from portalloc.cli.catalog import COMMANDS
from portalloc.cli.lazy import SUMMARY_LIMIT
from portalloc.cli.main import cli
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.storage.codec import dump_ledger
from tests.conftest import subprocess_env
from tests.testing.cli import READ_POLICIES

RUN_AND_LIST_MODULES = """
import json, os, sys
os.execve = lambda *args: sys.exit(0)  # `portalloc run` hands over here: its imports are all made by then
from portalloc.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="portalloc")
except SystemExit:
    pass
models = sys.modules.get("portalloc.core.models")
built = [] if models is None else [
    name for name in ("Allocation", "Ledger", "PortPolicy", "Pool") if getattr(models, name).__pydantic_complete__
]
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules) + [f"validator:{name}" for name in built]) + "\\n")
"""

#: The installed entry point (the console script's ``main``): the quick front door, else click.
ENTRY_MODULES = """
import os, sys
os._exit = sys.exit  # a quick answer ends here (``entry.leave``): its imports are all made by then
from portalloc.cli.entry import main
try:
    main()
except SystemExit:
    pass
names = sorted(sys.modules)
import json
sys.stderr.write("\\nMODULES " + json.dumps(names) + "\\n")
"""

#: What the interpreter itself imports as it starts, listed the same way.
STARTUP_MODULES = """
import sys
names = sorted(sys.modules)
import json
sys.stderr.write("\\nMODULES " + json.dumps(names) + "\\n")
"""

HEAVY = ("pydantic", "pydantic_core", "filelock")


def modules_after(*args: str, script: str = RUN_AND_LIST_MODULES, **env: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=subprocess_env(**env)
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


#: What a read may never import: the models, the lock, the host lease store, the warnings' logging.
_READ_FORBIDS = ("pydantic", "pydantic_core", "filelock", "sqlite3", "logging")


def _ledger(path: Path, policy: PortPolicy) -> Path:
    row = Allocation(model="m", app_num=1, backend=29001, frontend=29501)
    path.write_bytes(dump_ledger(Ledger(policy=policy).with_allocations([row])))
    return path


def own_command_only(modules: set[str], command: str) -> bool:
    commands = {name for name in modules if name.startswith("portalloc.cli.commands.")}
    return commands == {f"portalloc.cli.commands.{command}"}


def forbidden(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in names)


@pytest.mark.parametrize("policy", sorted(READ_POLICIES))
@pytest.mark.parametrize("command", ["get", "env", "run"])
def test_a_read_of_a_key_the_ledger_holds_imports_no_model_no_lock_no_lease_store(
    ledger_path: Path, policy: str, command: str
) -> None:
    _ledger(ledger_path, READ_POLICIES[policy])
    args = ["--ledger", str(ledger_path), command, "m", "1"] + (["--", "true"] if command == "run" else [])
    modules = modules_after(*args)
    assert forbidden(modules, _READ_FORBIDS) == []
    assert "portalloc.integrations.envfile" not in modules  # .env files are read only when a port is held
    assert own_command_only(modules, command)


#: New keys a write may meet: an app of a model the ledger has, a model new to it (the look-alike check
#: runs), and the pooled model of the policy with a pool (an app of its own pairs).
_NEW_KEYS = {"an existing model": ("m", 2), "a new model": ("brand_new", 1), "a pooled model": ("pooled", 1)}


def _allocated(path: Path, model: str, app_num: int) -> bool:
    return f'"model": "{model}", "app_num": {app_num},' in path.read_text()


@pytest.mark.parametrize("key", sorted(_NEW_KEYS))
@pytest.mark.parametrize("policy", sorted(READ_POLICIES))
def test_a_new_allocation_imports_no_pydantic(ledger_path: Path, policy: str, key: str) -> None:
    _ledger(ledger_path, READ_POLICIES[policy])
    model, app_num = _NEW_KEYS[key]
    modules = modules_after("--ledger", str(ledger_path), "get", model, str(app_num))
    assert _allocated(ledger_path, model, app_num)  # it did allocate: the lock and the lease store
    assert {"filelock", "sqlite3"} <= {name.split(".")[0] for name in modules}
    assert forbidden(modules, ("pydantic", "pydantic_core")) == []
    assert "portalloc.core.models" not in modules and "importlib.metadata" not in modules
    assert own_command_only(modules, "get")


@pytest.mark.parametrize("command", ["env", "run"])
def test_every_command_that_allocates_a_new_key_does_it_without_pydantic(ledger_path: Path, command: str) -> None:
    _ledger(ledger_path, READ_POLICIES["plain"])
    modules = modules_after(
        "--ledger", str(ledger_path), command, "m", "2", *(["--", "true"] if command == "run" else [])
    )
    assert _allocated(ledger_path, "m", 2)
    assert forbidden(modules, ("pydantic", "pydantic_core")) == []
    assert own_command_only(modules, command)


def test_a_new_allocation_with_a_port_config_imports_no_pydantic(ledger_path: Path) -> None:
    _ledger(ledger_path, READ_POLICIES["plain"])
    config = [{"model": "m", "app_number": 2, "backend_port": 29301, "frontend_port": 29801}]
    ledger_path.with_name("port_config.json").write_text(json.dumps(config))
    modules = modules_after("--ledger", str(ledger_path), "get", "m", "2")
    assert '"model": "m", "app_num": 2, "backend": 29301, "frontend": 29801}' in ledger_path.read_text()
    assert forbidden(modules, ("pydantic", "pydantic_core")) == []  # the platform's own case: it has one


def test_list_takes_no_lock_and_opens_no_lease_store(ledger_path: Path) -> None:
    _ledger(ledger_path, READ_POLICIES["plain"])
    modules = modules_after("--ledger", str(ledger_path), "list")
    assert forbidden(modules, ("filelock", "sqlite3")) == []
    assert own_command_only(modules, "list")


def test_get_of_an_existing_key_opens_the_store_only_once_after_the_ledger_changed(ledger_path: Path) -> None:
    other = PortAllocationService(
        ledger_path.with_name("other.json"), policy=PortPolicy(backend_start=30001, frontend_start=31001), probe=False
    )
    other.allocate_many([("e", 1)])  # this machine has a host lease store from now on
    policy = PortPolicy(backend_start=29001, frontend_start=29501)
    ledger_path.write_bytes(
        dump_ledger(
            Ledger(policy=policy).with_allocations([Allocation(model="m", app_num=1, backend=29001, frontend=29501)])
        )
    )  # as git brings a ledger: never leased here
    assert "sqlite3" in modules_after("--ledger", str(ledger_path), "get", "m", "1")  # the read leases its rows
    assert "sqlite3" not in modules_after("--ledger", str(ledger_path), "get", "m", "1")  # and then it is unchanged
    assert "sqlite3" not in modules_after("--ledger", str(ledger_path), "--no-leases", "get", "m", "1")


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


#: What the quick front door never imports: the click command line, the models, the lock, the lease store.
_QUICK_FORBIDS = ("click", *_READ_FORBIDS)


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"]])
def test_the_entry_points_help_imports_no_click(args: list[str]) -> None:
    modules = modules_after(*args, script=ENTRY_MODULES)
    # Nor typing, nor pathlib: the help needs neither (a get needs both, for the ledger's reader). An
    # editable install's path finder imports pathlib as the interpreter starts: what the start imports is not ours.
    started = modules_after(script=STARTUP_MODULES)
    assert forbidden(modules - started, (*_QUICK_FORBIDS, "typing", "pathlib")) == []
    assert not [name for name in modules if name.startswith("portalloc.cli.commands")]


@pytest.mark.parametrize("policy", sorted(READ_POLICIES))
@pytest.mark.parametrize("options", [[], ["--json"], ["--field", "frontend"]])
@pytest.mark.parametrize("probe", ["0", "1"])
def test_the_entry_points_get_of_a_held_key_imports_no_click(
    ledger_path: Path, policy: str, options: list[str], probe: str
) -> None:
    _ledger(ledger_path, READ_POLICIES[policy])
    args = ["--ledger", str(ledger_path), "get", "m", "1", *options]
    modules = modules_after(*args, script=ENTRY_MODULES, PORTALLOC_PROBE=probe)
    assert forbidden(modules, _QUICK_FORBIDS) == []
    assert not [name for name in modules if name.startswith("portalloc.cli.commands")]


@pytest.mark.parametrize("policy", sorted(READ_POLICIES))
@pytest.mark.parametrize("key", sorted(_NEW_KEYS))
def test_the_entry_points_get_of_a_new_key_imports_no_click(ledger_path: Path, policy: str, key: str) -> None:
    _ledger(ledger_path, READ_POLICIES[policy])
    model, app_num = _NEW_KEYS[key]
    modules = modules_after("--ledger", str(ledger_path), "get", model, str(app_num), script=ENTRY_MODULES)
    assert _allocated(ledger_path, model, app_num)  # it did allocate: the lock and the lease store
    assert {"filelock", "sqlite3"} <= {name.split(".")[0] for name in modules}
    assert forbidden(modules, ("click", "pydantic", "pydantic_core")) == []
    assert not [name for name in modules if name.startswith("portalloc.cli.commands")]


@pytest.mark.parametrize("args", [["get", "m", "1", "--no-such-option"], ["list"], ["get", "m", "-1"]])
def test_what_the_quick_door_declines_runs_on_click(ledger_path: Path, args: list[str]) -> None:
    _ledger(ledger_path, READ_POLICIES["plain"])
    modules = modules_after("--ledger", str(ledger_path), *args, script=ENTRY_MODULES)
    assert "click" in modules and f"portalloc.cli.commands.{args[0]}" in modules
