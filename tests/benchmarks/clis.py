"""How each contender is run from the command line, and what its output means."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from install import BIN_VARIABLE
from stores import Key, port_for_name, state_dir

HERE = Path(__file__).resolve().parent
_PORTALLOC_ENV = (
    "PORTALLOC_LEDGER",
    "PORTALLOC_CONFIG",
    "PORTALLOC_LOCK_TIMEOUT",
    "PORTALLOC_APPS_DIR",
    "PORTALLOC_LEASES",
    "XDG_STATE_HOME",
)


def console_script(name: str) -> str:
    """An installed console script (``portalloc``, ``port-for``): from the regular install of ``install.py``
    when there is one, else the one beside this interpreter."""
    installed = os.environ.get(BIN_VARIABLE)
    if installed:
        return str(Path(installed) / name)
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"the {name!r} command is not installed: pip install --group bench")
    return found


def python() -> str:
    """The interpreter of the peers' scripts and of the floor: the regular install's when there is one, as
    portalloc's (``install.py``), else this one."""
    installed = os.environ.get(BIN_VARIABLE)
    return str(Path(installed) / "python") if installed else sys.executable


#: Where the peers' scripts are run from: ``compile_scripts`` points it at byte-compiled copies.
SCRIPTS_VARIABLE = "PORTALLOC_BENCH_SCRIPTS"


def scripts() -> Path:
    """The directory of the peers' scripts (``sqlite_cli.py``, ``port_for_cli.py`` and what they import)."""
    return Path(os.environ.get(SCRIPTS_VARIABLE) or HERE)


def compile_scripts(workdir: Path) -> Path:
    """Copy this directory's scripts into ``workdir`` and byte-compile them there, for the children to run.

    Under ``PYTHONDONTWRITEBYTECODE=1`` (a developer's shell, CI) an imported module
    without a ``.pyc`` is compiled from source on every start: ``sqlite_cli.py`` would
    compile the 400-line ``stores.py`` on every call, while portalloc's modules come
    compiled from their install. Copies, so that the work tree gets no ``__pycache__``.
    """
    target = workdir / "scripts"
    target.mkdir()
    for source in HERE.glob("*.py"):
        shutil.copy2(source, target / source.name)
    subprocess.run([python(), "-m", "compileall", "-q", str(target)], check=True)
    os.environ[SCRIPTS_VARIABLE] = str(target)
    return target


def environment(**extra: str) -> dict[str, str]:
    """The current environment without portalloc's own variables, plus ``extra``.

    ``PORTALLOC_STATE_DIR`` is kept: ``run.py`` points it at its own temporary directory,
    so the benchmark never writes the user's host lease store; a command on a scenario's
    ledger gets that scenario's own store (``stores.state_dir``) in ``extra``.
    """
    env = {k: v for k, v in os.environ.items() if k not in _PORTALLOC_ENV}
    env.update(extra)
    return env


def floor_command() -> list[str]:
    """``python -c pass``: what starting any Python command costs at least."""
    return [python(), "-c", "pass"]


def help_command(store: str) -> list[str]:
    """``--help`` of a contender's command."""
    if store == "portalloc":
        return [console_script("portalloc"), "--help"]
    if store == "port-for":
        return [console_script("port-for"), "--help"]
    return [python(), str(scripts() / "sqlite_cli.py"), "--help"]


def get_command(store: str, path: Path, key: Key) -> tuple[list[str], dict[str, str]]:
    """The command line that prints ``key``'s port(s), allocating if new, and its environment."""
    if store.startswith("portalloc"):  # its variants differ by their ledger, not their command
        argv = [console_script("portalloc"), "--ledger", str(path), "get", "--json", key[0], str(key[1])]
        return argv, environment(PORTALLOC_STATE_DIR=str(state_dir(path)))
    if store == "port-for":
        argv = [python(), str(scripts() / "port_for_cli.py"), port_for_name(key)]
        return argv, environment(PORT_FOR_CONFIG=str(path))
    return [python(), str(scripts() / "sqlite_cli.py"), str(path), key[0], str(key[1])], environment()


def get_many_command(store: str, path: Path, batch: Path) -> list[str]:
    """The one command that allocates every ``MODEL APP_NUM`` line of ``batch`` (portalloc or SQLite)."""
    if store == "portalloc":
        return [console_script("portalloc"), "--ledger", str(path), "get-many", "--json", str(batch)]
    return [python(), str(scripts() / "sqlite_cli.py"), "--many", str(path), str(batch)]


def parse_output(store: str, output: str) -> tuple[int, ...]:
    """The port(s) a contender's ``get`` printed."""
    if store.startswith("portalloc"):
        import json

        data = json.loads(output)
        return data["backend"], data["frontend"]
    return tuple(int(word) for word in output.split())
