"""The whole bad-input matrix: every hostile input is refused with one clear error and no file changes.

The cases live in ``tests/reliability/bad_input.py`` (the harness prints them as a
table). Here the CLI cases run the console script's entry point in a forked child (the
same code, without paying interpreter start-up for every case); a sample also
runs through the installed ``portalloc`` script.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portalloc.errors import InvalidKey
from tests.reliability.bad_input import (
    LEDGER,
    Case,
    Outcome,
    _unreadable,
    _with_valid_ledger,
    all_cases,
    cli_commands,
    run_matrix,
)

CASES = all_cases()


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    """Every case's outcome, by label (run once for the module)."""
    return {outcome.case.label: outcome for outcome in run_matrix(CASES, runner="fork")}


def test_labels_are_unique() -> None:
    assert len({case.label for case in CASES}) == len(CASES)


@pytest.mark.parametrize("label", [case.label for case in CASES])
def test_hostile_input_is_refused_cleanly(outcomes: dict[str, Outcome], label: str) -> None:
    outcome = outcomes[label]
    assert outcome.passed, f"{outcome.problem}; stderr: {list(outcome.error_lines[:5])}"


def test_every_command_has_rows() -> None:
    covered = {case.command for case in CASES if case.front_end == "cli"}
    assert set(cli_commands()) <= covered


# One row per kind of hostile input, through the installed script as a user would run it.
_SAMPLE = [
    "model ../x | cli --ledger portalloc.json get ../x 1",
    "app_num 1e3 | cli --ledger portalloc.json release m 1e3",
    "ledger truncated mid-file | cli --ledger portalloc.json get n 2",
    "ledger nested 100,000 deep | cli --ledger portalloc.json list",
    "ledger unreadable (mode 000) | cli --ledger portalloc.json check",
    "ledger dir read-only (write needed) | cli --ledger portalloc.json get n 2",
    "ledger symlink into a missing directory | cli --ledger portalloc.json get n 2",
    "config not JSON | cli --ledger portalloc.json --config bad.json get n 2",
    "--lock-timeout 'nan' | cli --ledger portalloc.json --lock-timeout nan get n 2",
    "model non-UTF-8 byte | cli --ledger portalloc.json get caf\udce9 1",
    "ledger row with backend twice | cli --ledger portalloc.json get m 1",
    "ledger version true | cli --ledger portalloc.json env m 1",
    "--apps-dir with no app of the ledger | cli --ledger portalloc.json cleanup --apps-dir . --model m --dry-run",
]


def test_a_sample_through_the_installed_script() -> None:
    by_label = {case.label: case for case in CASES}
    sample = [by_label[label] for label in _SAMPLE]
    failed = [(o.case.label, o.problem, o.error_lines) for o in run_matrix(sample, runner="script") if not o.passed]
    assert failed == []


# --- the judge itself can fail ------------------------------------------------------------


def _judge(case: Case, runner: str = "fork") -> Outcome:
    [outcome] = run_matrix([case], runner=runner)
    return outcome


def test_judge_fails_a_command_that_succeeds() -> None:
    outcome = _judge(Case("valid", "cli", "get", _with_valid_ledger, ("--ledger", LEDGER, "get", "m", "1")))
    assert outcome.problem == "exit 0"


def test_judge_fails_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    def explode(*args: object, **kwargs: object) -> None:
        raise RecursionError("deep")

    monkeypatch.setattr(click, "echo", explode)  # the forked child inherits it
    # `list`, not `get` of a held key: the quick front door answers that without click.
    outcome = _judge(Case("boom", "cli", "list", _with_valid_ledger, ("--ledger", LEDGER, "list")))
    assert outcome.problem == "printed a traceback"


def _write_then_refuse() -> object:
    Path(LEDGER).write_bytes(b"{}")
    raise InvalidKey("refused, but too late")


def _raise_value_error() -> object:
    raise ValueError("not ours")


def test_judge_fails_a_changed_file_and_a_foreign_exception() -> None:
    changed = _judge(Case("writes", "api", "x", _with_valid_ledger, call=_write_then_refuse))
    assert changed.problem == f"changed {LEDGER}"
    foreign = _judge(Case("foreign", "api", "x", _with_valid_ledger, call=_raise_value_error))
    assert foreign.problem == "raised ValueError, not a PortallocError"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root reads a mode-000 file")
def test_unreadable_rows_bite_only_because_root_gives_up_its_override() -> None:
    argv = ("--ledger", LEDGER, "list")
    as_root = _judge(Case("unreadable", "cli", "list", _unreadable, argv))
    assert as_root.problem == "exit 0"  # root reads it anyway: that is why the matrix drops the override
    assert _judge(Case("unreadable", "cli", "list", _unreadable, argv, unprivileged=True)).passed
