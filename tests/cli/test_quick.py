"""The quick front door (``cli.quick``) answers only where the click command line answers the same.

Its promise is the codec fast reader's: where it answers, stdout, stderr, the exit
status and the files it leaves are exactly click's; everywhere else it declines, having
printed and written nothing. A hypothesis property draws command lines (global options,
option orders and spellings, held and new keys, odd names and numbers) and
environments, and compares the two paths in-process, each on its own fresh copy of the
same ledgers and host lease store; the
root help is compared with click's own rendering at every width click can choose; a
few real processes run the installed entry point (``python -m portalloc``) against the
click path (``cli.main.main``) for what only a process shows: a closed pipe, a held port.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portalloc import PortAllocationService
from portalloc.cli import quick
from portalloc.cli.main import cli
from portalloc.cli.roothelp import render, terminal_width
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.machine.syncstamp import signature, stale
from portalloc.storage.codec import dump_ledger
from tests.conftest import subprocess_env
from tests.testing.cli import READ_POLICIES

Outcome = tuple[str, str, int]
Run = subprocess.CompletedProcess[bytes]


@contextmanager
def _captured() -> Iterator[tuple[io.BytesIO, io.BytesIO]]:
    """``sys.stdout`` and ``sys.stderr`` into bytes, as UTF-8 text streams (a terminal's usual encoding)."""
    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdout, sys.stderr
    streams = (
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True),
    )
    sys.stdout, sys.stderr = streams
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = saved
        for stream in streams:
            stream.detach()  # a wrapper closes its buffer when it goes


@contextmanager
def _environment(env: dict[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``env`` applied (``None``: unset) for the duration."""
    with mock.patch.dict(os.environ):
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield


def quick_outcome(argv: list[str], env: dict[str, str | None]) -> Outcome | None:
    """What the quick door does with ``argv`` under ``env``; ``None``: it declined."""
    with _environment(env), _captured() as (out, err):
        status = quick.answer(argv)
    if status is None:
        assert (out.getvalue(), err.getvalue()) == (b"", b""), "a declined call must print nothing"
        return None
    return out.getvalue().decode(), err.getvalue().decode(), status


def click_outcome(argv: list[str], env: dict[str, str | None]) -> Outcome:
    """What the click command line does with ``argv`` under ``env``: ``cli.main`` as the console script runs it.

    Not click's ``CliRunner``: it forces its own help width, where the quick door must
    match the terminal's.
    """
    with _environment(env), _captured() as (out, err), pytest.raises(SystemExit) as ended:
        cli.main(args=argv, prog_name="portalloc")
    status = ended.value.code
    assert isinstance(status, int)
    return out.getvalue().decode(), err.getvalue().decode(), status


# --- the root help ------------------------------------------------------------------------


@pytest.mark.parametrize("width", range(50, 79))  # click's width: min(columns, 80) - 2, at least 50
def test_the_root_help_is_clicks_byte_for_byte_at_every_width(width: int) -> None:
    ctx = click.Context(cli, info_name="portalloc", terminal_width=width, **cli.context_settings)
    assert render(width) == cli.get_help(ctx)


@pytest.mark.parametrize("columns", [None, "", "0", "-3", "40", "52", "79", "80", "81", "200", "x", "8_0", " 90"])
def test_the_help_width_is_clicks(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_width() == max(min(shutil.get_terminal_size().columns, 80) - 2, 50)


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"]])
@pytest.mark.parametrize("columns", ["60", "200"])
def test_help_and_a_bare_portalloc_answer_as_click(argv: list[str], columns: str) -> None:
    env: dict[str, str | None] = {"COLUMNS": columns}
    assert quick_outcome(argv, env) == click_outcome(argv, env)


def test_the_variables_click_reads_are_the_ones_the_quick_door_knows() -> None:
    """A variable added to the root group or to ``get`` must be taught to the quick door (or declined there)."""
    ctx = click.Context(cli)
    get = cli.get_command(ctx, "get")
    assert get is not None
    read = {param.envvar for param in (*cli.params, *get.params) if param.envvar}
    assert read == {"PORTALLOC_LEDGER", *quick.DECLINED_VARIABLES, *quick.SWITCH_VARIABLES}
    # ...and get's parameters are the ones the quick door parses.
    assert [param.name for param in get.params] == ["model", "app_num", "as_json", "field"]


# --- get: the property ----------------------------------------------------------------------


_HELD = [("m", 1), ("model_a", 1), ("é", 1), ("モデル", 2), ("-x", 1), ("pooled", 3), ("m", 10)]
#: Keys no ledger holds: an app of a held model, a new model (the look-alike check runs), a pooled model's app.
_NEW = [("m", 2), ("fresh", 1), ("pooled", 4)]


def _write_ledger(path: Path, policy: PortPolicy) -> Path:
    rows = [
        Allocation(model=model, app_num=n, backend=29003 + 2 * i, frontend=29503 + 2 * i)
        for i, (model, n) in enumerate(_HELD)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump_ledger(Ledger(policy=policy).with_allocations(rows)))
    return path


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a default ``portalloc.json``, a ledger with reserved ports and a pool, a ledger whose
    default pre-configuration is a directory (click warns), a directory, and no ``missing.json``."""
    top = tmp_path_factory.mktemp("quick")
    _write_ledger(top / "portalloc.json", READ_POLICIES["plain"])
    _write_ledger(top / "pools.json", READ_POLICIES["reserved ports and a pool"])
    _write_ledger(top / "odd" / "portalloc.json", READ_POLICIES["plain"])
    (top / "odd" / "port_config.json").mkdir()
    (top / "a-dir").mkdir()
    return top


#: Names and numbers the ledgers hold, and odd ones; options of get, and tokens that are not.
_MODELS = ["m", "model_a", "é", "e\u0301", "モデル", "-x", "pooled", "new", "M", " m", "", "a/../b", "\udcff"]
_NUMBERS = ["1", "2", "3", "10", "01", "+1", "1_0", "1e3", "0", "-1", "99999999999", "١", " 1", "1000000"]
_OPTIONS = ["--json", "--field", "backend", "frontend", "--field=backend", "--field=frontend", "--field=x"]
_ODD = ["--json=1", "-h", "--help", "--", "--ledger", "-", "--fi", "--no-probe", "get"]
_LEDGERS = ["portalloc.json", "pools.json", "odd/portalloc.json", "missing.json", "a-dir", "", "-x"]
_VALUES = [None, "", "0", "1", "true", " 1", "no", "2"]


@st.composite
def plausible_lines(draw: st.DrawFn) -> tuple[list[str], dict[str, str | None]]:
    """``portalloc [--ledger L] get MODEL APP_NUM [--json | --field F]`` of a held or a new key, spelled every
    way the quick door reads, in an environment it reads: calls it answers (most of them), and the key now and
    then spelled as click may refuse it (``+1``, ``1_0``, a trailing space)."""
    argv: list[str] = []
    if draw(st.booleans()):
        ledger = draw(st.sampled_from(["portalloc.json", "pools.json", "odd/portalloc.json"]))
        argv += draw(st.sampled_from([["--ledger", ledger], [f"--ledger={ledger}"]]))
    model, number = draw(st.sampled_from([key for key in _HELD if not key[0].startswith("-")] + _NEW))
    model = draw(st.sampled_from([model, unicodedata.normalize("NFD", model)]))
    args = [model, str(number)]
    if draw(st.integers(0, 3)) == 0:  # the held key spelled another way, which click may or may not take
        numbers = [f"0{number}", f"+{number}", f" {number}", f"{number}.0", f"{number}e0", f"{number}_0"]
        numbers.append("".join(chr(0x660 + int(digit)) for digit in str(number)))  # Arabic-Indic digits
        models = [f"{model} ", f" {model}", model.upper(), f"{model}\t", f"{model}\u200b"]
        which = draw(st.integers(0, 1))
        args[which] = draw(st.sampled_from(models if which == 0 else numbers))
    option = draw(st.sampled_from([[], ["--json"], ["--field", "backend"], ["--field=frontend"]]))
    if draw(st.integers(0, 3)) == 0:  # options click refuses together, or takes twice
        option = draw(st.sampled_from([["--json", "--field=backend"], ["--json", "--json"], ["--field=x"]]))
    at = draw(st.integers(0, 2))  # options go anywhere among get's arguments
    argv += ["get", *args[:at], *option, *args[at:]]
    env = {name: draw(st.sampled_from([None, "", "0", "1"])) for name in quick.SWITCH_VARIABLES}
    if draw(st.integers(0, 3)) == 0:  # a value click reads otherwise, or refuses
        name = draw(st.sampled_from([*quick.SWITCH_VARIABLES, *quick.DECLINED_VARIABLES]))
        env[name] = draw(st.sampled_from(["true", " 1", "no", "2", "5", "x", "-1"]))
    env["PORTALLOC_LEDGER"] = draw(st.sampled_from([None, "", "pools.json"]))
    return argv, env


@st.composite
def odd_lines(draw: st.DrawFn) -> tuple[list[str], dict[str, str | None]]:
    """A command line near ``get`` with any of the odd tokens, and an environment with odd values."""
    argv: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        ledger = draw(st.sampled_from(_LEDGERS))
        argv += draw(st.sampled_from([["--ledger", ledger], [f"--ledger={ledger}"], ["--no-probe"], ["-V"]]))
    argv.append(draw(st.sampled_from(["get", "get", "list", "gett", "GET"])))
    tokens = [draw(st.sampled_from(_MODELS)), draw(st.sampled_from(_NUMBERS))]
    tokens += draw(st.lists(st.sampled_from(_OPTIONS + _ODD), max_size=3))
    argv += draw(st.permutations(tokens)) if draw(st.booleans()) else tokens
    env = {name: draw(st.sampled_from(_VALUES)) for name in (*quick.SWITCH_VARIABLES, *quick.DECLINED_VARIABLES)}
    env["PORTALLOC_LEDGER"] = draw(st.sampled_from([None, "", "pools.json", "missing.json", "odd/portalloc.json"]))
    return argv, env


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each example runs: a fresh copy of ``place`` (``work``) and a fresh host lease store (``state``)."""
    return tmp_path_factory.mktemp("quick-scratch")


def _files(top: Path) -> dict[str, bytes]:
    return {str(path.relative_to(top)): path.read_bytes() for path in sorted(top.rglob("*.json")) if path.is_file()}


def outcomes_alike(place: Path, scratch: Path, argv: list[str], env: dict[str, str | None]) -> Outcome | None:
    """``argv`` run by the quick door and by click, each in a fresh copy of ``place`` (the same path, the same
    empty host lease store); ``None`` if the quick door declined, having written nothing. Asserts that the two
    printed the same, ended the same and left the same ledgers."""
    work, state = scratch / "work", scratch / "state"
    env = {**env, "PORTALLOC_STATE_DIR": str(state)}
    seen: list[tuple[Outcome, dict[str, bytes]]] = []
    for run in (quick_outcome, click_outcome):
        for path in (work, state):
            shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(place, work)
        state.mkdir()
        cwd = os.getcwd()
        os.chdir(work)
        try:
            outcome = run(argv, env)
        finally:
            os.chdir(cwd)
        if outcome is None:
            assert _files(work) == _files(place), "a declined call must write nothing"
            return None
        seen.append((outcome, _files(work)))
    assert seen[0] == seen[1]
    return seen[0][0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.one_of(plausible_lines(), odd_lines()))
def test_the_quick_door_declines_or_answers_exactly_as_click(
    place: Path, scratch: Path, drawn: tuple[list[str], dict[str, str | None]]
) -> None:
    argv, env = drawn
    outcomes_alike(place, scratch, argv, env)


@pytest.mark.parametrize("policy", sorted(READ_POLICIES))
@pytest.mark.parametrize(
    "args",
    [
        ["get", "m", "1"],
        ["get", "--json", "é", "1"],
        ["get", "e\u0301", "1", "--field=frontend"],
        ["get", "m", "10", "--field", "backend"],
        ["get", "m", "2"],
        ["get", "fresh", "1", "--json"],
        ["get", "pooled", "4", "--field", "backend"],
    ],
)
def test_the_quick_door_answers_a_held_key_and_a_new_one(tmp_path: Path, policy: str, args: list[str]) -> None:
    """The common cases do get a quick answer (the property above would also hold if it declined everything)."""
    _write_ledger(tmp_path / "place" / "portalloc.json", READ_POLICIES[policy])
    answered = outcomes_alike(tmp_path / "place", tmp_path / "scratch", args, {})
    assert answered is not None and answered[2] == 0 and answered[0]


def test_a_new_key_is_written_by_the_quick_door(tmp_path: Path) -> None:
    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])
    assert quick_outcome(["--ledger", str(ledger), "get", "fresh", "1"], {}) == (
        "fresh/1: backend 29001, frontend 29501\n",
        "",
        0,
    )
    assert b'"model": "fresh", "app_num": 1, "backend": 29001, "frontend": 29501}' in ledger.read_bytes()


def test_a_ledger_that_changed_since_it_was_leased_is_leased_by_the_quick_answer(tmp_path: Path) -> None:
    PortAllocationService(
        tmp_path / "other.json", policy=PortPolicy(backend_start=30001, frontend_start=31001), probe=False
    ).allocate_many([("e", 1)])  # this machine has a host lease store now
    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])  # as git brings it: never leased here
    assert stale(None, ledger, signature(ledger))
    assert quick_outcome(["--ledger", str(ledger), "get", "m", "1"], {}) == (
        "m/1: backend 29003, frontend 29503\n",
        "",
        0,
    )
    assert not stale(None, ledger, signature(ledger))  # the read leased its rows, as the click path's does


def test_an_error_is_the_click_paths_error_line(tmp_path: Path) -> None:
    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])
    ledger.write_bytes(ledger.read_bytes()[:-20])  # cut short: a read refuses it
    for args in (["get", "m", "1"], ["get", "fresh", "1"]):
        answered = quick_outcome(["--ledger", str(ledger), *args], {})
        assert answered is not None and answered[2] == 1 and answered[1].startswith("Error: ")
        assert answered == click_outcome(["--ledger", str(ledger), *args], {})


# --- the installed entry point, in real processes ----------------------------------------


#: The installed entry point (``python -m portalloc``: the quick door first) and the click path alone.
_ENTRIES = ([sys.executable, "-m", "portalloc"], [sys.executable, "-c", "from portalloc.cli.main import main; main()"])


def _both(argv: list[str], env: dict[str, str] | None = None, stdout: int = subprocess.PIPE) -> list[Run]:
    """``argv`` run by the entry point and by the click path alone (``_ENTRIES``)."""
    return [
        subprocess.run([*entry, *argv], stdout=stdout, stderr=subprocess.PIPE, env=env or subprocess_env())
        for entry in _ENTRIES
    ]


def _same(runs: list[Run]) -> Run:
    quick_run, click_run = runs
    assert (quick_run.stdout, quick_run.stderr, quick_run.returncode) == (
        click_run.stdout,
        click_run.stderr,
        click_run.returncode,
    )
    return quick_run


def test_the_entry_point_answers_as_the_click_path(tmp_path: Path) -> None:
    ledger = str(_write_ledger(tmp_path / "portalloc.json", READ_POLICIES["reserved ports and a pool"]))
    assert _same(_both(["--help"], {**subprocess_env(), "COLUMNS": "64"})).stdout.startswith(b"Usage: portalloc")
    assert b'"backend": 29003' in _same(_both(["--ledger", ledger, "get", "m", "1", "--json"])).stdout
    assert _same(_both(["--ledger", ledger, "get", "m", "1", "--field", "frontend"])).stdout == b"29503\n"
    missing = _same(_both(["--ledger", str(tmp_path / "nope.json"), "get", "m", "1"]))
    assert missing.returncode == 1 and missing.stderr.startswith(b"Error: there is no ledger at")


def test_the_entry_point_allocates_a_new_key_as_the_click_path_does(tmp_path: Path) -> None:
    runs = []
    for side, entry in enumerate(_ENTRIES):  # each on its own copy of the ledger, with its own host lease store
        ledger = _write_ledger(tmp_path / str(side) / "portalloc.json", READ_POLICIES["plain"])
        env = {**subprocess_env(), "PORTALLOC_STATE_DIR": str(tmp_path / str(side) / "state")}
        runs.append(
            subprocess.run([*entry, "--ledger", str(ledger), "get", "fresh", "1"], capture_output=True, env=env)
        )
        assert b'"model": "fresh", "app_num": 1, "backend": 29001' in ledger.read_bytes()
    assert _same(runs).stdout == b"fresh/1: backend 29001, frontend 29501\n"
    assert runs[0].stderr == b""


def test_text_the_terminal_cannot_show_ends_as_on_the_click_path(tmp_path: Path) -> None:
    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])
    env = {**subprocess_env(), "PYTHONIOENCODING": "latin-1"}
    assert (
        _same(_both(["--ledger", str(ledger), "get", "m", "1"], env)).stdout == b"m/1: backend 29003, frontend 29503\n"
    )
    # A name latin-1 cannot spell: one line says why (written through click.echo, which the quick door defers to).
    unshowable = _same(_both(["--ledger", str(ledger), "get", "モデル", "2"], env))
    assert unshowable.returncode == 1 and unshowable.stderr.startswith(
        b"Error: cannot write to standard output: its encoding"
    )


def test_what_a_quick_write_leases_holds_once_its_process_has_ended(tmp_path: Path) -> None:
    """The quick door ends with ``os._exit`` (``entry.leave``), having closed the host lease store: what the
    first process leased holds for the second, which never gets the first ledger's ports."""
    env = {**subprocess_env(), "PORTALLOC_STATE_DIR": str(tmp_path / "state")}
    first = _write_ledger(tmp_path / "a" / "portalloc.json", READ_POLICIES["plain"])
    second = tmp_path / "b" / "portalloc.json"
    second.parent.mkdir()
    second.write_bytes(dump_ledger(Ledger(policy=READ_POLICIES["plain"])))  # the same range, nothing in it
    answers = [
        subprocess.run(
            [sys.executable, "-m", "portalloc", "--ledger", str(ledger), "get", "fresh", "1", "--json"],
            capture_output=True,
            env=env,
            check=True,
        ).stdout
        for ledger in (first, second)
    ]
    pairs = [(row["backend"], row["frontend"]) for row in map(json.loads, answers)]
    assert pairs[0] == (29001, 29501)  # the lowest pair its own ledger does not hold
    held = {(29003 + 2 * i, 29503 + 2 * i) for i in range(len(_HELD))} | {pairs[0]}
    assert pairs[1] not in held  # every row of the first ledger was leased, and the lease outlived the process
    # Each process closed the store before it ended: the write-ahead log went into it, not on to the next process.
    assert not (tmp_path / "state" / "leases.sqlite3-wal").exists()
    with sqlite3.connect(tmp_path / "state" / "leases.sqlite3") as store:
        assert store.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize("argv", [["--help"], [], ["-V"], ["get", "m", "1"]])
def test_a_reader_that_went_away_ends_the_quick_answer_with_status_141(tmp_path: Path, argv: list[str]) -> None:
    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        runs = _both(["--ledger", str(ledger), *argv] if argv[:1] == ["get"] else argv, stdout=write_end)
    finally:
        os.close(write_end)
    assert [(run.returncode, run.stderr) for run in runs] == [(141, b"")] * 2


def test_a_port_something_else_holds_is_warned_about_the_same_way(tmp_path: Path) -> None:
    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])
    with socket.socket() as server:
        try:
            server.bind(("127.0.0.1", 29003))
        except OSError:
            pytest.skip("port 29003 is taken on this machine")
        server.listen()
        env = {**subprocess_env(), "PORTALLOC_PROBE": "1"}
        quick_run = _same(_both(["--ledger", str(ledger), "get", "m", "1"], env))
    assert quick_run.stderr.startswith(b"Warning: port 29003 (backend of m/1) is held by ")
    assert quick_run.stdout == b"m/1: backend 29003, frontend 29503\n"


# --- what the review of the quick door's new-key answers found ----------------------------


def test_a_repository_at_a_path_that_is_not_utf8_gets_one_error_line(tmp_path: Path) -> None:
    """The host lease store keeps paths as SQLite text, which must be UTF-8: one line says so, on both paths."""
    top = tmp_path / os.fsdecode(b"r\xff")
    top.mkdir()
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    env = {**subprocess_env(), "PORTALLOC_STATE_DIR": str(tmp_path / "state")}  # nothing is written to it
    done = _same(
        [subprocess.run([*entry, "get", "m", "1"], cwd=top, capture_output=True, env=env) for entry in _ENTRIES]
    )
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.startswith(b"Error: cannot write the host lease store ") and done.stderr.count(b"\n") == 1
    assert b"PORTALLOC_LEASES=0" in done.stderr


def test_ctrl_c_while_waiting_for_the_lock_ends_as_on_the_click_path(tmp_path: Path) -> None:
    import fcntl
    import signal

    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])
    ended = []
    with open(ledger.with_name("portalloc.json.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another writer holds the ledger: the new key's get waits
        for entry in _ENTRIES:
            process = subprocess.Popen(
                [*entry, "--ledger", str(ledger), "get", "fresh", "1"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=subprocess_env(),
            )
            time.sleep(1.5)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
            ended.append((process.returncode, out, err))
    assert ended == [(130, b"", b"\n")] * 2  # click's new line after ^C, the shell's status for SIGINT
    assert b"fresh" not in ledger.read_bytes()


@pytest.mark.parametrize("argv", [["get", "m", "1"], ["get", "fresh", "1"], ["--help"]])
def test_a_closed_stdout_is_one_error_line(tmp_path: Path, argv: list[str]) -> None:
    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])
    closed = ["sh", "-c", 'exec "$@" >&-', "sh"]
    runs = [
        subprocess.run([*closed, *entry, "--ledger", str(ledger), *argv], capture_output=True, env=subprocess_env())
        for entry in _ENTRIES
    ]
    done = _same(runs)
    assert (done.returncode, done.stderr) == (1, b"Error: cannot write to standard output: it is closed\n")


def test_an_encoding_with_a_byte_order_mark_writes_as_the_click_path_does(tmp_path: Path) -> None:
    ledger = _write_ledger(tmp_path / "portalloc.json", READ_POLICIES["plain"])
    outputs = []
    for side, entry in enumerate(_ENTRIES):
        with open(tmp_path / f"out-{side}", "wb") as out:
            subprocess.run(
                [*entry, "--ledger", str(ledger), "get", "m", "1"],
                stdout=out,
                env={**subprocess_env(), "PYTHONIOENCODING": "utf-16"},
                check=True,
            )
        outputs.append((tmp_path / f"out-{side}").read_bytes())
    assert outputs[0] == outputs[1] == "m/1: backend 29003, frontend 29503\n".encode("utf-16-le")
