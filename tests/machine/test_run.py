"""``portalloc run``: real child processes through the installed script (run execs, so never in-process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import portalloc_script, subprocess_env

NAMES = ("BACKEND_PORT", "FRONTEND_PORT", "PORT", "APP_BACKEND_PORT")
PRINT_ENV = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {NAMES!r}}}))"


def run(ledger_path: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [portalloc_script(), "--ledger", str(ledger_path), "run", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        input=input,
    )


def allocated(ledger_path: Path, model: str, app_num: int) -> tuple[int, int]:
    out = subprocess.run(
        [portalloc_script(), "--ledger", str(ledger_path), "get", "--json", model, str(app_num)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    ).stdout
    data = json.loads(out)
    return data["backend"], data["frontend"]


@pytest.mark.usefixtures("new_ledger")
def test_child_sees_its_ports_and_port(ledger_path: Path) -> None:
    result = run(ledger_path, "model_a", "1", "--", sys.executable, "-c", PRINT_ENV)
    assert result.returncode == 0, result.stderr
    backend, frontend = allocated(ledger_path, "model_a", 1)  # run allocated the pair
    assert json.loads(result.stdout) == {
        "BACKEND_PORT": str(backend),
        "FRONTEND_PORT": str(frontend),
        "PORT": str(backend),
        "APP_BACKEND_PORT": None,
    }


@pytest.mark.usefixtures("new_ledger")
def test_prefix_and_no_port_var(ledger_path: Path) -> None:
    result = run(
        ledger_path, "--prefix", "APP_", "--no-port-var", "model_a", "1", "--", sys.executable, "-c", PRINT_ENV
    )
    backend, _ = allocated(ledger_path, "model_a", 1)
    env = json.loads(result.stdout)
    assert env["APP_BACKEND_PORT"] == str(backend)
    assert env["BACKEND_PORT"] is None and env["PORT"] is None


@pytest.mark.usefixtures("new_ledger")
def test_options_of_the_command_stay_its_own(ledger_path: Path) -> None:
    result = run(
        ledger_path, "model_a", "1", "--", sys.executable, "-c", "import sys; print(sys.argv[1:])", "--help", "-h"
    )
    assert result.stdout == "['--help', '-h']\n"


@pytest.mark.usefixtures("new_ledger")
def test_exit_code_is_the_childs(ledger_path: Path) -> None:
    assert run(ledger_path, "m", "1", "--", sys.executable, "-c", "raise SystemExit(7)").returncode == 7
    assert run(ledger_path, "m", "1", "--", sys.executable, "-c", "pass").returncode == 0


@pytest.mark.usefixtures("new_ledger")
def test_stdin_stdout_stderr_pass_through(ledger_path: Path) -> None:
    echo = "import sys; data = sys.stdin.read(); sys.stdout.write(data.upper()); sys.stderr.write('err\\n')"
    result = run(ledger_path, "m", "1", "--", sys.executable, "-c", echo, input="hello\nworld\n")
    assert (result.stdout, result.stderr) == ("HELLO\nWORLD\n", "err\n")


@pytest.mark.usefixtures("new_ledger")
def test_death_by_signal_is_128_plus_n_in_a_shell(ledger_path: Path) -> None:
    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    # Python reports the signal itself (the child *is* the process portalloc became) ...
    direct = run(ledger_path, "m", "1", "--", sys.executable, "-c", suicide)
    assert direct.returncode == -signal.SIGTERM
    # ... and a shell shows 128+N, as for any command.
    script = '"$0" --ledger "$1" run m 1 -- "$2" -c "$3"; echo "status=$?"'
    shell = subprocess.run(
        ["sh", "-c", script, portalloc_script(), str(ledger_path), sys.executable, suicide],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert shell.stdout == f"status={128 + signal.SIGTERM}\n"


@pytest.mark.usefixtures("new_ledger")
def test_signals_sent_to_portalloc_reach_the_command(ledger_path: Path) -> None:
    child = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda n, f: sys.exit(40 + n))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [portalloc_script(), "--ledger", str(ledger_path), "run", "m", "1", "--", sys.executable, "-c", child],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    os.kill(process.pid, signal.SIGTERM)  # the pid we started: portalloc, now the command itself
    assert process.wait(timeout=60) == 40 + signal.SIGTERM


@pytest.mark.usefixtures("new_ledger")
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the ignored-signal mask from /proc")
def test_sigpipe_is_not_left_ignored(ledger_path: Path) -> None:
    # Python ignores SIGPIPE; an ignored signal survives exec, so run must restore it.
    result = run(ledger_path, "m", "1", "--", "grep", "^SigIgn:", "/proc/self/status")
    mask = int(result.stdout.split()[1], 16)
    assert not mask & (1 << (signal.SIGPIPE - 1))


def test_missing_command_is_a_clear_error_with_exit_127(ledger_path: Path) -> None:
    result = run(ledger_path, "m", "1", "--", "no-such-command-xyz")
    assert result.returncode == 127
    assert result.stderr == "Error: command not found: no-such-command-xyz (not on PATH)\n"
    assert run(ledger_path, "m", "1", "--", "./nope/x").returncode == 127
    assert not ledger_path.exists()  # a mistyped command allocates nothing


def test_file_that_cannot_be_executed_is_exit_126(ledger_path: Path, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    result = run(ledger_path, "m", "1", "--", str(script))
    assert result.returncode == 126
    assert result.stderr.startswith("Error: cannot run ") and "Traceback" not in result.stderr


def test_no_command_is_a_usage_error(ledger_path: Path) -> None:
    result = run(ledger_path, "m", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: Missing argument")
