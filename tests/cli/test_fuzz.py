"""The fuzz pass: hypothesis over every command's arguments, input files and standard input.

Where the bad-input matrix (``tests/reliability/bad_input.py``) tries each hostile
input it names on each command, this draws combinations nobody wrote down: any
command, its own options in any order, tokens from the matrix's hostile models, app
numbers, ledgers, configurations and compose files, paths to a FIFO, a directory, a
symbolic link, and arbitrary text and bytes in the files the command reads. It found
the 5,000-digit numbers (``int()``'s limit) in key lists, ``reserve`` and compose files.

The rule for every example: no traceback, no exception out of the CLI, an exit code of
0, 1 or 2, and a failure says why in an ``Error:`` line (a report on stdout may carry an
exit 1 on its own: ``check`` with conflicts, ``compose-check`` with findings). Each
example runs in-process (click's ``CliRunner``) in a fresh directory of its own, under
an alarm, so a hang fails the example rather than the suite. ``serve`` (which would
serve) is left out, and ``run`` only ever names a program that does not exist (it
``exec``s, and in-process that would replace the test runner).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from portalloc.cli.main import cli
from tests.reliability.bad_input import (
    BAD_APP_NUMS,
    BAD_CONFIGS,
    BAD_LEDGERS,
    BAD_MODELS,
    HOSTILE_COMPOSE,
    LONG_NUMBER,
    VALID,
    cli_commands,
)

#: Examples per command (every command but ``serve``): about 20 s in all on a quiet 2-core machine.
EXAMPLES = 20
#: Seconds one example may take before it counts as a hang.
HANG_SECONDS = 30

LEFT_OUT = {"serve"}
#: 0 done, 1 refused or found problems, 2 a usage error; ``run``: 126 not executable, 127 not found (as a shell).
EXIT_CODES = (0, 1, 2, 126, 127)
#: ``run``'s program: never found, so ``run`` stops before its ``exec``.
NO_PROGRAM = "/nonexistent/portalloc-fuzz-program"

#: The files every example's directory holds, by the token that names them on the command line.
INPUT_FILES = ("keys.txt", "keys.json", "compose.yaml", "config.json", "import.json", "base.json", "theirs.json")
#: Where a command's own file argument points most of the time, by parameter name (else any path).
FILE_FOR = {
    "source": ("keys.txt", "keys.json", "import.json", "-"),
    "file": ("compose.yaml",),
    "env_file": ("keys.txt",),
    "ledgers": ("portalloc.json", "base.json", "theirs.json"),
    "base": ("base.json",),
    "theirs": ("theirs.json",),
}
SPECIAL_PATHS = ("fifo", "directory", "link-to-victim", "dangling-link", "missing.json", "portalloc.json", "out.env")

MODELS = st.one_of(
    st.sampled_from(["m", "model_a", "n", "café", "cafe\u0301", "model_\u0430", "openai/gpt-4o", "router\U0001f6dc"]),
    st.sampled_from(list(BAD_MODELS.values())),
    st.text(max_size=12),
)
#: Numbers as typed: small, negative, past the app-number and port limits, and past int()'s 4,300 digits.
_LONG_NUMBERS = st.sampled_from([LONG_NUMBER, "1" + "0" * 4300, "7" * 4301])
NUMBERS = st.one_of(
    st.integers(-10, 70_000).map(str),
    st.sampled_from(list(BAD_APP_NUMS.values())),
    _LONG_NUMBERS,
    _LONG_NUMBERS,  # twice: the rare input that ends in int()'s own ValueError is what this pass is for
)
RANGES = st.one_of(NUMBERS, st.tuples(NUMBERS, NUMBERS).map("-".join))
FILES = st.sampled_from(INPUT_FILES + SPECIAL_PATHS)
TOKENS = st.one_of(MODELS, RANGES, FILES, st.sampled_from(["-", "--", "--no-such-option", "--help"]))


def _json_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: Numbers inside files: half of them long, since a reader that converts a number converts them all.
FILE_NUMBERS = st.one_of(_LONG_NUMBERS, NUMBERS)


def _text(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return strategy.map(lambda text: text.encode("utf-8", "surrogatepass"))


KEY_LINES = _text(
    st.lists(st.tuples(MODELS, FILE_NUMBERS).map(" ".join), max_size=4).map(lambda lines: "\n".join(lines) + "\n")
)
JSON_KEYS = _text(
    st.tuples(MODELS, FILE_NUMBERS).map(lambda key: f'[{{"model": {_json_text(key[0])}, "app_num": {key[1]}}}]')
)
COMPOSE_FILES = _text(
    st.tuples(FILE_NUMBERS, FILE_NUMBERS).map(
        lambda ports: (
            f'services:\n  web:\n    image: x\n    ports:\n      - "{ports[0]}:80"\n'
            f"      - target: {ports[1]}\n        published: {ports[0]}\n"
        )
    )
)
PORT_CONFIGS = _text(
    st.tuples(MODELS, FILE_NUMBERS, FILE_NUMBERS).map(
        lambda row: (
            f'[{{"model": {_json_text(row[0])}, "app_number": {row[1]}, '
            f'"backend_port": {row[2]}, "frontend_port": 8101}}]'
        )
    )
)
NOISE = st.one_of(
    st.sampled_from([data for data in BAD_CONFIGS.values() if len(data) < 100_000]),
    st.sampled_from([data for data in HOSTILE_COMPOSE.values() if len(data) < 100_000]),
    st.binary(max_size=200),
    _text(st.text(max_size=200)),
)
#: Two ledgers in three are valid, so that most calls get past reading it; the rest are the matrix's broken ones.
LEDGERS = st.one_of(
    st.just(VALID), st.just(VALID), st.sampled_from([d for d in BAD_LEDGERS.values() if len(d) < 100_000])
)
#: What each input file holds: mostly what its name says (so a reader gets past its first check), now and then noise.
CONTENTS: dict[str, st.SearchStrategy[bytes]] = {
    "keys.txt": st.one_of(KEY_LINES, KEY_LINES, KEY_LINES, NOISE),
    "keys.json": st.one_of(JSON_KEYS, JSON_KEYS, JSON_KEYS, NOISE),
    "compose.yaml": st.one_of(COMPOSE_FILES, COMPOSE_FILES, COMPOSE_FILES, NOISE),
    "config.json": st.one_of(PORT_CONFIGS, PORT_CONFIGS, PORT_CONFIGS, NOISE),
    "import.json": st.one_of(PORT_CONFIGS, LEDGERS, NOISE),
    "base.json": st.one_of(LEDGERS, NOISE),
    "theirs.json": st.one_of(LEDGERS, NOISE),
}

_CONTEXT = click.Context(cli)
COMMANDS = {
    name: command
    for name in cli_commands()
    if name not in LEFT_OUT and (command := cli.get_command(_CONTEXT, name)) is not None
}
GLOBAL_PREFIXES = st.sampled_from(
    [(), (), ("--no-probe",), ("--allow-confusable",), ("--config", "config.json"), ("--lock-timeout", "0")]
)


def _values(param: click.Parameter) -> st.SearchStrategy[str]:
    """Values for ``param`` drawn by what its type says it takes, with anything else now and then."""
    kind = param.type
    if isinstance(kind, click.Choice):
        typed: st.SearchStrategy[str] = st.sampled_from([str(choice) for choice in kind.choices])
    elif param.name in FILE_FOR:
        typed = st.one_of(st.sampled_from(FILE_FOR[param.name]), st.sampled_from(FILE_FOR[param.name]), FILES)
    elif isinstance(kind, click.Path) or param.name == "revisions":
        typed = FILES
    elif kind.name == "model":
        typed = MODELS
    elif kind.name in ("app_num", "integer range", "integer") or "LOW-HIGH" in kind.name or "K-L" in kind.name:
        typed = RANGES
    else:
        typed = TOKENS
    return st.one_of(typed, typed, typed, TOKENS)


@st.composite
def _arguments(draw: st.DrawFn, command: click.Command) -> list[str]:
    """Arguments for ``command`` built from its own parameters: each argument, some options, in a drawn order."""
    if isinstance(command, click.Group) and command.commands and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(command.commands)))
        return [name, *draw(_arguments(command.commands[name]))]
    positional: list[str] = []
    options: list[list[str]] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            count = param.nargs if param.nargs > 0 else draw(st.integers(0, 3))
            positional += [draw(_values(param)) for _ in range(count)]
        elif draw(st.booleans()):
            opt = draw(st.sampled_from(param.opts))
            is_flag = isinstance(param, click.Option) and param.is_flag
            options.append([opt] if is_flag else [opt, draw(_values(param))])
    words = positional + [word for option in draw(st.permutations(options)) for word in option]
    if draw(st.integers(0, 4)) == 0:  # now and then, a stray token anywhere
        words.insert(draw(st.integers(0, len(words))), draw(TOKENS))
    if draw(st.integers(0, 8)) == 0:  # and now and then one dropped
        words = words[1:]
    return words


@st.composite
def invocations(draw: st.DrawFn, name: str) -> tuple[list[str], str]:
    """``(argv after --ledger, standard input)`` for one call of the command ``name``."""
    # `run` gets two tokens, then the program: no drawn token can become the program it runs.
    args = [draw(MODELS), draw(RANGES), "--", NO_PROGRAM] if name == "run" else draw(_arguments(COMMANDS[name]))
    stdin = draw(st.one_of(KEY_LINES, JSON_KEYS, NOISE)).decode("utf-8", "replace")
    return [*draw(GLOBAL_PREFIXES), name, *args], stdin


@contextlib.contextmanager
def _case_directory(files: dict[str, bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="portalloc-fuzz-") as name:
        directory = Path(name)
        for file, data in files.items():
            (directory / file).write_bytes(data)
        os.mkfifo(directory / "fifo")
        (directory / "directory").mkdir()
        (directory / "victim").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
        (directory / "link-to-victim").symlink_to(directory / "victim")
        (directory / "dangling-link").symlink_to(directory / "created-through-a-link")
        with contextlib.chdir(directory):
            yield directory


class Hung(Exception):
    """An example ran past ``HANG_SECONDS``."""


def _hang(signum: int, frame: FrameType | None) -> None:
    raise Hung(f"no answer in {HANG_SECONDS} s")


def judge(exit_code: int, stdout: str, stderr: str) -> str:
    """What is wrong with how a call ended, or ``""`` when it ended as the contract says."""
    if "Traceback" in stdout + stderr:
        return "printed a traceback"
    if exit_code not in EXIT_CODES:
        return f"exit code {exit_code}"
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    if exit_code not in (0, 1) and not errors:
        return f"exit {exit_code} without an Error: line"
    if exit_code == 1 and not errors and not stdout.strip():
        return "exit 1 with neither an Error: line nor a report"
    return ""  # several Error: lines may be right: `check A B` reports each ledger it cannot read


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # The same examples every run: CI must not pass or fail by the draw.
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), ledger=LEDGERS, contents=st.fixed_dictionaries(CONTENTS))
def test_no_input_makes_a_traceback(
    command: str, data: st.DataObject, ledger: bytes, contents: dict[str, bytes]
) -> None:
    argv, stdin = data.draw(invocations(command), label="invocation")
    assume(not any("\x00" in arg for arg in argv))  # execve cannot pass a NUL byte: no shell can send one
    files = {"portalloc.json": ledger, **contents}
    previous = signal.signal(signal.SIGALRM, _hang)
    try:
        with _case_directory(files) as directory:
            signal.alarm(HANG_SECONDS)
            result = CliRunner().invoke(cli, ["--ledger", "portalloc.json", *argv], input=stdin)
            signal.alarm(0)
            assert not (directory / "created-through-a-link").exists(), argv
            assert (directory / "victim").read_bytes() == b"root:x:0:0::/root:/bin/sh\n", argv
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raised = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"portalloc {' '.join(argv)!r} raised:\n{raised}")
    problem = judge(result.exit_code, result.stdout, result.stderr)
    assert not problem, f"portalloc {argv!r}: {problem}\nstdout: {result.stdout[:500]}\nstderr: {result.stderr[:500]}"


@pytest.mark.parametrize(
    ("exit_code", "stdout", "stderr", "problem"),
    [
        (0, "ok\n", "", ""),
        (1, "", "Error: no\n", ""),
        (1, "port 5001 is held twice\n", "", ""),
        (1, "", "", "exit 1 with neither an Error: line nor a report"),
        (2, "", "Usage: …\n", "exit 2 without an Error: line"),
        (1, "", 'Traceback (most recent call last):\n  File "x"\nValueError\n', "printed a traceback"),
        (3, "", "Error: x\n", "exit code 3"),
        (127, "", "", "exit 127 without an Error: line"),
    ],
)
def test_the_judge_can_fail(exit_code: int, stdout: str, stderr: str, problem: str) -> None:
    assert judge(exit_code, stdout, stderr) == problem
