"""The command line: output formats, the Error-line contract, the installed script, concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from portalloc.storage.codec import parse_ledger
from tests.conftest import RunCli, obey_file_permissions, portalloc_script, read_json, subprocess_env


def assert_one_error_line(stderr: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in stderr


@pytest.mark.usefixtures("new_ledger")
def test_get_seed_story(run_cli: RunCli) -> None:
    outputs = [run_cli("get", model, "1").stdout for model in ("model_a", "model_b", "model_c")]
    assert outputs == [
        "model_a/1: backend 5001, frontend 8001\n",
        "model_b/1: backend 5003, frontend 8003\n",
        "model_c/1: backend 5005, frontend 8005\n",
    ]


@pytest.mark.usefixtures("new_ledger")
def test_get_json_keys(run_cli: RunCli) -> None:
    result = run_cli("get", "model_a", "3", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "model": "model_a",
        "app_num": 3,
        "backend": 5001,
        "frontend": 8001,
        "worktree": None,  # the ledger's pair: not a linked worktree's own (worktrees: separate)
    }
    # The fast lookup path (existing key) prints the same thing.
    assert run_cli("get", "model_a", "3", "--json").stdout == result.stdout


@pytest.mark.usefixtures("new_ledger")
def test_list_table_and_json(run_cli: RunCli) -> None:
    assert run_cli("list").stdout.startswith("No allocations in ")
    assert json.loads(run_cli("list", "--json").stdout) == []
    run_cli("get", "model_b", "12")
    run_cli("get", "a-much-longer-model-name", "1")
    assert run_cli("list").stdout.splitlines() == [
        "MODEL                     APP  BACKEND  FRONTEND",
        "a-much-longer-model-name    1     5003      8003",
        "model_b                    12     5001      8001",
    ]
    only_b = json.loads(run_cli("list", "--json", "--model", "model_b").stdout)
    assert only_b == [{"model": "model_b", "app_num": 12, "backend": 5001, "frontend": 8001, "worktree": None}]


@pytest.mark.usefixtures("new_ledger")
def test_check_clean_and_with_conflicts(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("get", "a", "1")
    result = run_cli("check")
    assert (result.exit_code, result.stdout) == (0, f"OK: 1 allocation, no conflicts ({ledger_path})\n")
    data = read_json(ledger_path)
    assert isinstance(data, dict)
    data["allocations"].append({"model": "b", "app_num": 1, "backend": 5003, "frontend": 8001})
    ledger_path.write_text(json.dumps(data))
    result = run_cli("check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "conflict: port 8001 is used by a/1 (frontend) and b/1 (frontend)",
        f"1 conflict in {ledger_path}",
    ]


def test_check_on_a_corrupt_ledger_exits_1_with_the_position(run_cli: RunCli, ledger_path: Path) -> None:
    ledger_path.write_text('{"version": 1,\n  "allocations": [,]}')
    result = run_cli("check")
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert "line 2 column 19" in result.stderr


@pytest.mark.usefixtures("new_ledger")
def test_stats_text_and_json(run_cli: RunCli, ledger_path: Path) -> None:
    run_cli("get", "a", "1")
    run_cli("get", "b", "1")
    stats = json.loads(run_cli("stats", "--json").stdout)
    assert stats["allocations"] == 2 and stats["models"] == 2
    assert stats["capacity"] == 1494 and stats["free_pairs"] == 1492
    assert stats["policy"]["backend_start"] == 5001
    text = run_cli("stats").stdout
    assert "Free pairs:     1,492 of 1,494" in text
    assert "backend 5001-7999, frontend 8001-10999, step 2" in text


@pytest.mark.usefixtures("new_ledger")
def test_release(run_cli: RunCli) -> None:
    run_cli("get", "a", "1")
    assert run_cli("release", "a", "1").stdout == "Released a/1.\n"
    again = run_cli("release", "a", "1")
    assert again.exit_code == 1
    assert_one_error_line(again.stderr)
    assert "a/1 has no allocation" in again.stderr


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["get", "m", "0"], 2, "app_num must be a whole number from 1 to 1,000,000, not '0'"),
        (["get", "m", "-1"], 2, "app_num must be a whole number from 1 to 1,000,000, not '-1'"),
        (["release", "m", "-25"], 2, "app_num must be a whole number from 1 to 1,000,000, not '-25'"),
        (["list", "-1"], 2, "No such option '-1'"),  # list takes no app number: -1 is just an unknown option
        (["get", "cafe\u0301\u200b", "1"], 2, "invisible character"),
        (["get", "m", "abc"], 2, "not 'abc'"),
        (["get", "m", "1e3"], 2, "not '1e3'"),
        (["get", "m", "99999999999999999999"], 2, "from 1 to 1,000,000"),
        (["get", "", "1"], 2, "model must not be empty"),
        (["get", "   ", "1"], 2, "model must not be empty"),
        (["get", "a\x1bb", "1"], 2, "control character"),
        (["get", "x" * 201, "1"], 2, "the limit is 200"),
        (["get", "m"], 2, "Missing argument 'APP_NUM'"),
        (["release", "m", "0"], 2, "not '0'"),
        (["frobnicate"], 2, "No such command 'frobnicate'"),
        (["cleanup"], 2, "Missing option '--apps-dir'"),
        (["--lock-timeout", "-1", "get", "m", "1"], 2, "--lock-timeout"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(
    run_cli: RunCli, ledger_path: Path, args: list[str], code: int, fragment: str
) -> None:
    result = run_cli(*args)
    assert result.exit_code == code
    assert_one_error_line(result.stderr)
    assert fragment in result.stderr
    assert result.stdout == ""
    assert not ledger_path.exists()


def test_missing_ledger_directory(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from portalloc.cli.main import cli

    result = CliRunner().invoke(cli, ["--ledger", str(tmp_path / "no" / "such" / "l.json"), "get", "m", "1"])
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert "does not exist" in result.stderr
    assert not (tmp_path / "no").exists()


def test_ledger_that_is_a_directory(run_cli: RunCli, ledger_path: Path) -> None:
    ledger_path.mkdir()
    for args in (["get", "m", "1"], ["list"], ["check"]):
        result = run_cli(*args)
        assert result.exit_code == 1
        assert_one_error_line(result.stderr)
        assert "is not a regular file (a directory)" in result.stderr


def test_corrupt_ledger_is_left_byte_for_byte(run_cli: RunCli, ledger_path: Path) -> None:
    content = b'{"version": 1, "allocations": [{"model": "m", "app_num": 1, "backend": 5001}]}'
    ledger_path.write_bytes(content)
    for args in (["get", "n", "1"], ["get", "m", "1"], ["release", "m", "1"], ["list"], ["stats"]):
        result = run_cli(*args)
        assert result.exit_code == 1
        assert_one_error_line(result.stderr)
        assert str(ledger_path) in result.stderr
    assert ledger_path.read_bytes() == content


def test_unreadable_ledger(ledger_path: Path) -> None:
    content = b'{"version": 1}'
    ledger_path.write_bytes(content)
    os.chmod(ledger_path, 0)
    result = subprocess.run(
        [sys.executable, "-m", "portalloc", "--ledger", str(ledger_path), "get", "m", "1"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        preexec_fn=obey_file_permissions,
    )
    assert result.returncode == 1
    assert_one_error_line(result.stderr)
    assert "Permission denied" in result.stderr
    os.chmod(ledger_path, 0o644)
    assert ledger_path.read_bytes() == content


@pytest.mark.usefixtures("new_ledger")
def test_preconfig_fallback_warns_on_stderr(run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("get", "first", "1")
    (tmp_path / "port_config.json").write_text(
        '[{"model": "m", "app_number": 1, "backend_port": 5001, "frontend_port": 9001}]'
    )
    result = run_cli("get", "m", "1")  # port_config.json beside the ledger is found by default
    assert result.stdout == "m/1: backend 5003, frontend 8003\n"
    assert result.stderr.startswith(
        "Warning: pre-configured ports 5001/9001 for m/1 cannot be used (port 5001 is held by first/1 (backend))"
    )


@pytest.mark.usefixtures("new_ledger")
def test_a_preconfigured_bad_port_is_refused_by_get_as_by_import(run_cli: RunCli, tmp_path: Path) -> None:
    """One rule for whether a key may hold a pair: ``get`` with a port_config entry and ``import`` of it agree."""
    config = tmp_path / "port_config.json"
    config.write_text('[{"model": "m", "app_number": 1, "backend_port": 6000, "frontend_port": 9000}]')
    why = "6000 is a port browsers refuse to connect to (the policy skips them)"
    imported = run_cli("import", str(config), "--dry-run", "--json")
    assert [row["reason"] for row in json.loads(imported.stdout)["skipped_rows"]] == [why]
    result = run_cli("get", "m", "1")  # port_config.json beside the ledger is found by default
    assert result.stdout == "m/1: backend 5001, frontend 8001\n"
    assert result.stderr == f"Warning: pre-configured ports 6000/9000 for m/1 cannot be used ({why}); " + (
        "allocated 5001/8001 instead\n"
    )


def test_explicit_config_and_env_vars(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from portalloc.cli.main import cli

    config = tmp_path / "elsewhere.json"
    config.write_text('[{"model": "m", "app_number": 1, "backend_port": 6001, "frontend_port": 9001}]')
    ledger = tmp_path / "env-ledger.json"
    assert CliRunner().invoke(cli, ["init", str(ledger)]).exit_code == 0
    env = {"PORTALLOC_LEDGER": str(ledger), "PORTALLOC_CONFIG": str(config)}
    result = CliRunner().invoke(cli, ["get", "m", "1"], env=env)
    assert result.stdout == "m/1: backend 6001, frontend 9001\n"
    assert ledger.exists()


def test_help_and_version(run_cli: RunCli) -> None:
    from portalloc import __version__

    assert run_cli("--version").stdout == f"portalloc, version {__version__}\n"
    from portalloc.cli.main import cli

    help_text = run_cli("--help").stdout
    sections = help_text.split("\n\n")
    listed = [
        line.split()[0]
        for section in sections[sections.index(next(s for s in sections if s.startswith("Daily use:"))) :]
        for line in section.splitlines()[1:]
        if line.startswith("  ") and not line.startswith("   ")
    ]
    # Every command once, each in a section by job.
    assert sorted(listed) == cli.list_commands(click.Context(cli))
    assert {"get", "list", "check", "stats", "release", "cleanup"} <= set(listed)
    assert "Daily use:\n  get " in help_text and "\nGit:\n" in help_text
    assert "..." not in help_text.split("Daily use:", 1)[1]  # no summary cut mid-sentence


def test_bare_portalloc_prints_the_help_without_an_error(ledger_path: Path) -> None:
    result = subprocess.run([portalloc_script()], capture_output=True, text=True, env=subprocess_env())
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("Usage: portalloc [OPTIONS] COMMAND [ARGS]...")


def test_every_command_help_has_an_example_and_the_global_options_note(run_cli: RunCli) -> None:
    from portalloc.cli.main import cli

    for name in cli.list_commands(click.Context(cli)):
        help_text = " ".join(run_cli(name, "--help").stdout.split())
        assert "Example" in help_text and "portalloc " in help_text.split("Example", 1)[1], name
        assert "Global options (--ledger, --config, --lock-timeout, --no-probe) go before the command" in help_text


@pytest.mark.usefixtures("new_ledger")
def test_get_field_prints_a_bare_port(run_cli: RunCli, ledger_path: Path) -> None:
    assert run_cli("get", "model_a", "1", "--field", "frontend").stdout == "8001\n"  # allocates
    assert run_cli("get", "model_a", "1", "--field", "backend").stdout == "5001\n"  # the lookup path
    both = run_cli("get", "model_a", "1", "--field", "backend", "--json")
    assert both.exit_code == 2 and both.stderr.startswith("Error: --json and --field cannot be used together")
    bad = run_cli("get", "model_b", "1", "--field", "port")
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: Invalid value for '--field'")
    assert [row["model"] for row in read_json(ledger_path)["allocations"]] == ["model_a"]  # nothing else written


# --- the installed script, real processes -------------------------------------------------------


@pytest.mark.usefixtures("new_ledger")
def test_installed_script_and_python_dash_m(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    script = subprocess.run(
        [portalloc_script(), "--ledger", str(ledger), "get", "model_a", "1", "--json"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    assert json.loads(script.stdout)["backend"] == 5001
    module = subprocess.run(
        [sys.executable, "-m", "portalloc", "--ledger", str(ledger), "get", "model_b", "1"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    assert module.stdout == "model_b/1: backend 5003, frontend 8003\n"
    bad = subprocess.run(
        [portalloc_script(), "--ledger", str(ledger), "get", "model_b", "x"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert bad.returncode == 2
    assert_one_error_line(bad.stderr)


@pytest.mark.usefixtures("new_ledger")
def test_concurrent_cli_writers_lose_nothing(tmp_path: Path) -> None:
    """8 processes × 3 keys started at once, all through the installed script, on one ledger."""
    ledger = tmp_path / "portalloc.json"
    keys = [(f"model_{p}", app) for p in range(8) for app in range(1, 4)]
    procs = [
        subprocess.Popen(
            [portalloc_script(), "--ledger", str(ledger), "get", model, str(app), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for model, app in keys
    ]
    answers = {}
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        row = json.loads(out)
        answers[(row["model"], row["app_num"])] = (row["backend"], row["frontend"])
    stored = parse_ledger(ledger.read_bytes(), ledger)
    assert {a.key: a.ports for a in stored.allocations} == answers
    assert set(answers) == set(keys)
    ports = [p for pair in answers.values() for p in pair]
    assert len(ports) == len(set(ports)) == 48
    # Lowest pairs first: 24 keys take exactly the first 24 pairs of the sequence.
    assert sorted(b for b, _ in answers.values()) == list(range(5001, 5049, 2))


def test_check_of_a_missing_ledger_fails(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    result = run_cli("check")
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert f"there is no ledger at {ledger_path}" in result.stderr


@pytest.mark.usefixtures("new_ledger")
def test_check_reports_every_ledger_given_even_after_a_bad_one(run_cli: RunCli, tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.json", tmp_path / "good.json"
    bad.write_text("{")
    run_cli("get", "m", "1")
    good.write_bytes((tmp_path / "portalloc.json").read_bytes())
    result = run_cli("check", str(bad), str(good))
    assert result.exit_code == 1
    assert_one_error_line(result.stderr)
    assert result.stdout == f"OK: 1 allocation, no conflicts ({good})\n"


def test_check_of_a_missing_path_given_exits_1_like_any_failed_check(run_cli: RunCli, tmp_path: Path) -> None:
    for target in (tmp_path / "MISSING.json", tmp_path):
        result = run_cli("check", str(target))
        assert result.exit_code == 1 and result.stdout == ""
        assert_one_error_line(result.stderr)


def _script(*args: str | bytes, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    """Run the installed script; ``stdout`` may be a real file or pipe end to test what it does with it."""
    return subprocess.run(
        [portalloc_script(), *args],
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        env=subprocess_env(),
        check=False,
    )


def test_a_non_utf8_byte_in_an_argument_is_one_error_line(ledger_path: Path) -> None:
    done = _script("--ledger", str(ledger_path), "get", b"caf\xe9", "1")
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.startswith(b"Error: Invalid value for 'MODEL': model 'caf\\udce9' is not valid UTF-8 text")
    assert done.stderr.count(b"\n") == 1 and not ledger_path.exists()


def test_a_surrogate_escape_in_a_ledger_row_is_refused_by_every_command(ledger_path: Path) -> None:
    row = '{"model": "m\\udcff", "app_num": 1, "backend": 5001, "frontend": 8001}'
    ledger_path.write_text('{"version": 1, "allocations": [' + row + "]}")
    before = ledger_path.read_bytes()
    for args in (("check",), ("get", "n", "1"), ("list",), ("release", "n", "1")):
        done = _script("--ledger", str(ledger_path), *args)
        assert done.returncode == 1, args
        assert done.stderr.startswith(b"Error: ") and done.stderr.count(b"\n") == 1, done.stderr
        assert b"not valid UTF-8 text" in done.stderr
    assert ledger_path.read_bytes() == before


@pytest.mark.usefixtures("new_ledger")
def test_nfc_and_nfd_spellings_get_one_pair(run_cli: RunCli, ledger_path: Path) -> None:
    nfc = json.loads(run_cli("get", "caf\u00e9", "1", "--json").stdout)
    nfd = json.loads(run_cli("get", "cafe\u0301", "1", "--json").stdout)
    assert nfc == nfd == {"model": "caf\u00e9", "app_num": 1, "backend": 5001, "frontend": 8001, "worktree": None}
    assert len(json.loads(run_cli("list", "--json").stdout)) == 1
    assert "caf\u00e9" in ledger_path.read_text(encoding="utf-8")


def test_a_conflicted_ledger_still_allocates_and_says_so(run_cli: RunCli, ledger_path: Path) -> None:
    rows = [
        {"model": "a", "app_num": 1, "backend": 5001, "frontend": 8001},
        {"model": "b", "app_num": 1, "backend": 5001, "frontend": 8003},  # a plain merge's double booking
    ]
    ledger_path.write_text(json.dumps({"version": 1, "allocations": rows}))
    result = run_cli("get", "c", "1")
    assert result.exit_code == 0 and result.stdout == "c/1: backend 5005, frontend 8005\n"
    assert result.stderr == (
        f"Warning: {ledger_path} has 1 port held twice (5001); new allocations avoid them, "
        "but run 'portalloc check' and 'portalloc repair'\n"
    )
    again = run_cli("get", "c", "1")  # an existing key is not a new allocation: nothing to warn about
    assert again.exit_code == 0 and again.stderr == ""


@pytest.mark.usefixtures("new_ledger")
def test_output_that_cannot_be_written_is_one_error_line(ledger_path: Path) -> None:
    _script("--ledger", str(ledger_path), "get", "m", "1")
    for args in (("list",), ("list", "--json"), ("get", "m", "1"), ("get", "n", "2")):
        with open("/dev/full", "wb") as full:
            done = _script("--ledger", str(ledger_path), *args, stdout=full)
        assert done.returncode == 1, args
        assert done.stderr == b"Error: cannot write to standard output: No space left on device\n"


def test_a_reader_that_went_away_ends_quietly_with_status_141(ledger_path: Path) -> None:
    from portalloc import PortAllocationService

    PortAllocationService(ledger_path).allocate_many([(f"model-{'x' * 90}-{n}", 1) for n in range(1000)])
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        closed = _script("--ledger", str(ledger_path), "list", stdout=write_end)
    finally:
        os.close(write_end)
    assert (closed.returncode, closed.stderr) == (141, b"")
    # And through a real `| head -1`: over 100 KB of table, far more than a pipe holds.
    head = subprocess.run(
        f"'{portalloc_script()}' --ledger '{ledger_path}' list | head -1; echo \"status ${{PIPESTATUS[0]}}\"",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert head.stdout.splitlines()[0].split() == ["MODEL", "APP", "BACKEND", "FRONTEND"]
    assert head.stdout.splitlines()[1] == "status 141" and head.stderr == ""


def test_ctrl_c_exits_130_without_a_traceback(ledger_path: Path) -> None:
    import fcntl
    import signal
    import time

    ledger_path.write_text('{"version": 1, "allocations": []}')
    with open(f"{ledger_path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the writer waits for this lock until Ctrl-C
        writer = subprocess.Popen(
            [portalloc_script(), "--ledger", str(ledger_path), "--lock-timeout", "60", "get", "m", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=subprocess_env(),
        )
        # Wait until it is really waiting for the lock, not still importing: filelock retries every
        # millisecond, each retry a sleep, so its voluntary context switches climb by hundreds a second.
        deadline = time.monotonic() + 20
        switches = _voluntary_switches(writer.pid)
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = _voluntary_switches(writer.pid)
            if now - switches > 30:
                break
            switches = now
        writer.send_signal(signal.SIGINT)
        out, err = writer.communicate(timeout=20)
    assert writer.returncode == 130
    assert out == b"" and b"Traceback" not in err and b"Error" not in err
    assert json.loads(ledger_path.read_text()) == {"version": 1, "allocations": []}


def _voluntary_switches(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))


@pytest.mark.usefixtures("new_ledger")
def test_a_name_the_output_encoding_cannot_show_is_one_error_line(ledger_path: Path) -> None:
    done = subprocess.run(
        [portalloc_script(), "--ledger", str(ledger_path), "get", "\u30e2\u30c7\u30eb", "1"],
        capture_output=True,
        env=subprocess_env(PYTHONIOENCODING="latin-1"),
    )
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    assert done.stderr == (
        b"Error: cannot write to standard output: its encoding (latin-1) cannot show '\\u30e2\\u30c7\\u30eb'\n"
    )


@pytest.mark.usefixtures("new_ledger")
def test_env_names_the_app_by_its_directory(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("get", "first", "1").exit_code == 0
    assert run_cli("get", "openai/gpt-4o", "2").exit_code == 0
    app = tmp_path / "apps" / "openai%2Fgpt-4o" / "app2"
    app.mkdir(parents=True)
    done = run_cli("env", "--app-dir", str(app), "--format", "dotenv")
    assert (done.exit_code, done.stdout) == (0, "BACKEND_PORT=5003\nFRONTEND_PORT=8003\n")
    both = run_cli("env", "m", "1", "--app-dir", str(app))
    assert both.exit_code == 2 and both.stderr.startswith("Error: give MODEL APP_NUM or --app-dir, not both")
    neither = run_cli("env")
    assert neither.exit_code == 2 and neither.stderr.startswith("Error: give MODEL APP_NUM, or --app-dir DIR")
    odd = run_cli("env", "--app-dir", str(tmp_path / "apps" / "a b" / "app1"))
    assert odd.exit_code == 1 and "is not a model's directory" in odd.stderr and "Traceback" not in odd.output


@pytest.mark.parametrize("option", ["--ledger", "--ledger=other.json", "--lock-timeout", "--no-probe", "-V"])
def test_a_global_option_after_the_command_says_where_it_goes(option: str) -> None:
    """Run as a user runs it (the console script), so click's real argv handling is what is judged."""
    args = [option, "other.json"] if option in ("--ledger", "--lock-timeout") else [option]
    done = subprocess.run(
        [portalloc_script(), "get", "m", "1", *args], capture_output=True, text=True, env=subprocess_env(), timeout=60
    )
    name = option.partition("=")[0]
    assert done.returncode == 2
    assert done.stderr == (
        f"Error: {name} is a global option: it goes before the command (portalloc {name} … get …) "
        "(see 'portalloc --help')\n"
    )


def test_version_short_and_long() -> None:
    from portalloc import __version__

    for flag in ("-V", "--version"):
        done = subprocess.run([portalloc_script(), flag], capture_output=True, text=True, env=subprocess_env())
        assert (done.returncode, done.stdout) == (0, f"portalloc, version {__version__}\n")


@pytest.mark.usefixtures("new_ledger")
def test_check_counts_with_a_thousands_separator_as_stats_does(run_cli: RunCli, ledger_path: Path) -> None:
    keys = "".join(f"model {n}\n" for n in range(1, 1001))
    assert run_cli("get-many", "-", input=keys).exit_code == 0
    assert run_cli("check").stdout == f"OK: 1,000 allocations, no conflicts ({ledger_path})\n"
    assert "1,000 (1 model)" in run_cli("stats").stdout
