"""Shared fixtures: a ledger path in a temp dir and a CLI runner bound to it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portalloc.cli import cli

#: Environment variables that would leak the developer's own set-up into a test.
_PORTALLOC_ENV = (
    "PORTALLOC_LEDGER",
    "PORTALLOC_CONFIG",
    "PORTALLOC_LOCK_TIMEOUT",
    "PORTALLOC_APPS_DIR",
    "PORTALLOC_PROBE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PORTALLOC_ENV:
        monkeypatch.delenv(name, raising=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "machine: the test looks at this machine's real ports (no stand-in probe)")


@pytest.fixture(autouse=True)
def _ports_of_this_machine_do_not_matter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, every port counts as free unless a test is marked ``machine``.

    Tests of the allocation rule expect exact pairs (5001/8001, 5003/8003, …); a developer's
    own server on one of those ports must not fail them. The probe itself is tested with
    real sockets in ``tests/test_probe.py`` (marked ``machine``).
    """
    if request.node.get_closest_marker("machine") is None:
        import portalloc.probe

        monkeypatch.setattr(portalloc.probe, "is_free", lambda port: True)


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    """Where a test's ledger lives (not created)."""
    return tmp_path / "portalloc.json"


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(ledger_path: Path) -> RunCli:
    """Run ``portalloc --ledger <ledger_path> ARGS…`` in-process; stdout and stderr kept apart."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, ["--ledger", str(ledger_path), *args], input=input, env=env)

    return run


def portalloc_script() -> str:
    """The installed ``portalloc`` console script (next to this interpreter)."""
    script = Path(sys.executable).with_name("portalloc")
    if script.exists():
        return str(script)
    found = shutil.which("portalloc")
    if found is None:
        raise RuntimeError("the portalloc console script is not installed; run `pip install -e .[test]`")
    return found


def read_json(path: Path) -> object:
    """The parsed contents of a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current environment without portalloc's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _PORTALLOC_ENV}
    env.update(extra)
    return env


def drop_root_file_access() -> None:
    """``preexec_fn`` that makes a root child obey file permission bits (no-op for other users).

    Root reads a mode-000 file anyway through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH;
    dropping both from the bounding set before ``exec`` takes them away from the child,
    so "unreadable ledger" can be tested honestly when the suite runs as root.
    """
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
