"""compose-check and the compose reading behind it (``integrations/compose.py``), judged by docker compose."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from portalloc import PortAllocationService
from portalloc.errors import ComposeFileError, UnsafeFile
from portalloc.integrations.compose import load_project
from portalloc.integrations.composefiles import read_variables
from tests.compose_judge import BINARY, compose_published, judge_env, portalloc_published, verdict
from tests.conftest import RunCli, subprocess_env
from tests.reliability.processes import portalloc_script

FIXTURES = Path(__file__).parents[1] / "compose_fixtures"
#: The top-level fixture files (``_name.yaml`` files are only included or extended by others).
FIXTURE_FILES = sorted(p for p in FIXTURES.glob("*.y*ml") if not p.name.startswith("_"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def allocate(ledger_path: Path, *keys: tuple[str, int]) -> None:
    PortAllocationService(ledger_path, probe=False).allocate_many(list(keys or [("model_a", 1), ("model_b", 1)]))


# --- against docker compose itself -------------------------------------------------------


@pytest.mark.compose
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.name for p in FIXTURE_FILES])
def test_fixture_publishes_what_compose_publishes(path: Path) -> None:
    """Every fixture: the same host ports (service, IP, range, protocol), or both refuse the file."""
    assert verdict(portalloc_published, path) == verdict(compose_published, path)


#: The start of most small files below: one service with an image.
_W = "services:\n  w:\n    image: x\n"
#: Whole small files beyond the fixtures: long syntax, odd structure, variables anywhere.
FILE_CASES = {
    "long published 0": _W + "    ports:\n      - {target: 80, published: 0}\n",
    "long target str": _W + "    ports:\n      - {target: '80', published: 5001}\n",
    "long range": _W + "    ports:\n      - {target: 80, published: '8000-8001'}\n",
    "long proto xyz": _W + "    ports:\n      - {target: 80, published: 5001, protocol: xyz}\n",
    "long bad ip": _W + "    ports:\n      - {target: 80, published: 5001, host_ip: nope}\n",
    "long no target": _W + "    ports:\n      - {published: 5001}\n",
    "long target 0": _W + "    ports:\n      - {target: 0, published: 5001}\n",
    "long published neg": _W + "    ports:\n      - {target: 80, published: -1}\n",
    "long unknown key": _W + "    ports:\n      - {target: 80, published: 5001, foo: 1}\n",
    "long published float": _W + "    ports:\n      - {target: 80, published: 5001.5}\n",
    "long published bool": _W + "    ports:\n      - {target: 80, published: true}\n",
    "int port 0": _W + "    ports: [0]\n",
    "int port 70000": _W + "    ports: [70000]\n",
    "ports string": _W + "    ports: '5001:80'\n",
    "ports map": _W + "    ports: {a: 1}\n",
    "service null": "services:\n  w:\n",
    "services null": "services:\n",
    "services list": "services: [a]\n",
    "empty file": "",
    "top list": "- a\n",
    "x-field required var": "x-a: ${NOPE:?no}\nservices:\n  w:\n    image: x\n",
    "env required var": _W + "    environment:\n      A: ${NOPE:?no}\n",
    "key interpolation": _W + "    environment:\n      ${NOPE:?no}: 1\n",
    "label with dollar": _W + "    labels: ['a=$5']\n",
    "yes port": _W + "    ports: [yes]\n",
    "octal port": _W + "    ports: [0o17]\n",
    "hex port": _W + "    ports: [0x50]\n",
    "ports with null": _W + "    ports: [null]\n",
    "duplicate service": _W + "  w:\n    image: y\n",
    "name field bad": "name: 'UPPER'\nservices:\n  w:\n    image: x\n",
    "image null": "services:\n  w:\n    image:\n    ports: ['5001:80']\n",
    "build only str": "services:\n  w:\n    build: .\n    ports: ['5001:80']\n",
    "ports ipv6 no bracket": _W + "    ports: ['fe80::1:5001:80']\n",
    "ports bracket range": _W + "    ports: ['[::1]:5001-5002:80-81']\n",
    "profiles str": _W + "    profiles: dev\n",
    "extends missing": _W + "    extends: nope\n",
    "extends file missing": _W + "    extends: {file: nope.yml, service: a}\n",
    "include missing": "include: [nope.yml]\nservices:\n  w:\n    image: x\n",
    "dollar alone": _W + "    ports: ['$:80']\n",
    "dollar brace empty": _W + "    ports: ['${}:80']\n",
    "dollar digit": _W + "    command: 'echo $1'\n",
    "nested default": _W + "    ports: ['${A:-${B:-5001}}:80']\n",
    "plus": _W + "    ports: ['${HOME:+5001}:80']\n",
    "required with default set": _W + "    ports: ['${HOME:?x}:80']\n",
}


@pytest.mark.compose
@pytest.mark.parametrize("case", list(FILE_CASES))
def test_small_file_as_compose_reads_it(tmp_path: Path, case: str) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(FILE_CASES[case])
    assert verdict(portalloc_published, path) == verdict(compose_published, path)


#: ``.env`` contents whose variables compose and portalloc must read alike.
ENV_CASES = {
    "plain": b"A=1\nB=two words\n",
    "bom": b"\xef\xbb\xbfA=1\nB=2\n",
    "colon form": b"A: 1\nB: x y\n",
    "cr only line ends": b"A=1\rB=2\r",
    "crlf": b"A=1\r\nB=2\r\n",
    "export and comments": b"# c\n  # c2\nexport A=1 # note\nB=x#y\n",
    "quotes": b"A='lit ${B}'\nB=\"q\\n${C}\"\nC=3\n",
    "multi-line double quotes": b'A="one\ntwo"\nB=2\n',
    "interpolated from above": b"FRONTEND_PORT=8001\nA=${FRONTEND_PORT}\nB=http://localhost:${FRONTEND_PORT:-1}/x\n",
    "reference before definition": b"A=${B}\nB=2\n",
    "defaults": b"A=${NONE:-d}\nB=${NONE-e}${EMPTY:-f}\nEMPTY=\n",
    "last wins": b"A=1\nA=2\nB=${A}\n",
    "environment wins": b"ENVVAR=from-file\nA=${ENVVAR}\nB=2\n",
    "dollars and backslashes": b"A=$$x\\$y\nB=${ENVVAR:+set}${NONE+x}\n",
}


def _compose_environment(directory: Path, names: list[str], env: dict[str, str]) -> dict[str, str]:
    """What compose interpolates ``${NAME}`` to, for each name, reading ``directory/.env``."""
    assert BINARY is not None
    lines = "".join(f"      {name}: ${{{name}}}\n" for name in names)
    (directory / "compose.yaml").write_text(f"services:\n  a:\n    image: x\n    environment:\n{lines}")
    result = subprocess.run(
        [BINARY, "config", "--format", "json"],
        cwd=directory,
        env={**judge_env(env), "COMPOSE_PROJECT_NAME": "judge"},
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, str] = json.loads(result.stdout)["services"]["a"]["environment"]
    # config prints a re-loadable file, so a literal "$" comes out as "$$".
    return {name: value.replace("$$", "$") for name, value in found.items()}


@pytest.mark.compose
@pytest.mark.parametrize("case", list(ENV_CASES))
def test_env_file_reads_as_compose_reads_it(tmp_path: Path, case: str) -> None:
    (tmp_path / ".env").write_bytes(ENV_CASES[case])
    env = {"ENVVAR": "from-environment"}
    ours = read_variables(tmp_path / ".env", required=True, environ=env)
    names = ["A", "B"]
    assert {name: ours.get(name, "") for name in names} == _compose_environment(tmp_path, names, env)


@pytest.mark.compose
@pytest.mark.parametrize(
    "data", [b"A=${NOPE:?must be set}\n", b'A="unclosed\nB=2\n'], ids=["required", "unclosed quote"]
)
def test_env_file_compose_refuses_is_refused(tmp_path: Path, data: bytes) -> None:
    (tmp_path / ".env").write_bytes(data)
    path = write(tmp_path / "compose.yaml", _W)
    assert verdict(portalloc_published, path) == verdict(compose_published, path) == "rejected"


@pytest.mark.parametrize(
    "case", ["plain", "crlf", "export and comments", "interpolated from above", "last wins", "multi-line double quotes"]
)
def test_env_file_reads_as_python_dotenv_reads_it(tmp_path: Path, case: str) -> None:
    """Where python-dotenv and compose agree, portalloc agrees with both.

    They differ on CR-only line ends, ``A: 1``, ``${A-default}`` and ``${…}`` inside
    single quotes; there portalloc reads what compose reads (the test above).
    """
    from dotenv import dotenv_values

    (tmp_path / ".env").write_bytes(ENV_CASES[case])
    theirs = {k: v or "" for k, v in dotenv_values(tmp_path / ".env", interpolate=True).items()}
    assert read_variables(tmp_path / ".env", required=True, environ={}) == theirs


# --- the command -------------------------------------------------------------------------


def test_compose_check_catches_a_wrong_mapping(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    allocate(ledger_path)  # model_a/1 → 5001/8001, model_b/1 → 5003/8003
    good = write(
        tmp_path / "good.yml",
        'services:\n  api:\n    build: .\n    ports: ["5001:8000"]\n  web:\n    build: .\n    ports: ["8001:3000"]\n',
    )
    ok = run_cli("compose-check", str(good), "--model", "model_a", "--app", "1")
    assert (ok.exit_code, ok.stdout) == (
        0,
        f"OK: 2 published ports in {good}, checked against model_a/1's pair and the ledger\n",
    )
    wrong = write(tmp_path / "wrong.yml", 'services:\n  api:\n    image: x\n    ports: ["5003:8000"]\n')
    bad = run_cli("compose-check", str(wrong), "--model", "model_a", "--app", "1")
    assert bad.exit_code == 1
    assert bad.stdout.splitlines() == [
        "services.api.ports[0] '5003:8000' publishes host port 5003, which is model_b/1's backend port",
        f"1 problem in {wrong} (1 published port against model_a/1's pair and the ledger)",
    ]


def test_compose_check_json(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    allocate(ledger_path)
    wrong = write(
        tmp_path / "c.yml", 'services:\n  api:\n    image: x\n    ports: ["127.0.0.1:5003:80", "7000-7009:80"]\n'
    )
    result = run_cli("compose-check", str(wrong), "--model", "model_a", "--app", "1", "--json")
    assert result.exit_code == 1 and result.stderr == ""
    report = json.loads(result.stdout)
    assert report["app"] == {"model": "model_a", "app_num": 1}
    assert report["published"] == [
        {
            "service": "api",
            "host_ip": "127.0.0.1",
            "protocol": "tcp",
            "port": 5003,
            "last_port": 5003,
            "any_one": False,
        },
        {"service": "api", "host_ip": "", "protocol": "tcp", "port": 7000, "last_port": 7009, "any_one": True},
    ]
    assert [(f["kind"], f["port"], f["holders"]) for f in report["findings"]] == [
        ("held", 5003, [{"model": "model_b", "app_num": 1, "role": "backend"}]),
        ("not-own", 7000, []),
    ]
    assert report["findings_not_shown"] == 0


def test_compose_check_reads_env_beside_the_file_and_the_environment_wins(
    run_cli: RunCli, ledger_path: Path, tmp_path: Path
) -> None:
    allocate(ledger_path)
    app = tmp_path / "apps" / "model_a" / "app1"
    compose_file = write(
        app / "docker-compose.yml", 'services:\n  api:\n    image: x\n    ports: ["${API_PORT}:8000"]\n'
    )
    assert run_cli("dotenv", "model_a", "1", str(app / ".env")).exit_code == 0
    (app / ".env").write_bytes((app / ".env").read_bytes() + b"API_PORT=${BACKEND_PORT}\n")
    # The app comes from the path (apps/model_a/app1); the port from .env, where compose expands ${…} too.
    ok = run_cli("compose-check", str(compose_file))
    assert ok.exit_code == 0, ok.stdout
    assert "against model_a/1's pair" in ok.stdout
    overridden = run_cli("compose-check", str(compose_file), env={"API_PORT": "5003"})
    assert overridden.exit_code == 1
    assert "which is model_b/1's backend port" in overridden.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("extends-same-file.yaml", "services.web.ports[0] '4000:4000' publishes host port 4000, already published by"),
        ("include.yaml", None),
        ("profiles-exclusive.yaml", None),
        ("ipv4-ipv6.yaml", None),
        ("bad-required-variable.yaml", "required variable NOPE is missing a value: must be set"),
        ("bad-broken-interpolation.yaml", "invalid interpolation format"),
        ("bad-float.yaml", "services.web.ports[0] 5001.5: invalid type float for port"),
        ("bad-bool.yaml", "services.web.ports[0] True: must be a number or a string"),
        ("bad-duplicate-key.yaml", "mapping key 'ports' already defined at line 4"),
        ("bad-null-ports.yaml", "services.web.ports must be a list"),
    ],
)
def test_compose_check_on_fixtures(run_cli: RunCli, ledger_path: Path, name: str, message: str | None) -> None:
    """Clean files pass; what compose rejects, and an inherited port published twice, fail with the reason."""
    allocate(ledger_path, ("other", 1))
    PortAllocationService(ledger_path, probe=False).release_ports("other", 1)  # a ledger, none of its ports
    result = run_cli("compose-check", str(FIXTURES / name))
    assert "Traceback" not in result.output
    if message is None:
        assert result.exit_code == 0, result.stdout
    else:
        assert result.exit_code == 1
        assert message in result.stdout


def test_compose_check_refuses_a_missing_ledger(run_cli: RunCli, ledger_path: Path) -> None:
    result = run_cli("compose-check", str(FIXTURES / "wordpress.yaml"))
    assert (result.exit_code, result.stderr) == (1, f"Error: there is no ledger at {ledger_path}\n")
    assert not ledger_path.exists()


def test_compose_check_errors(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    allocate(ledger_path)
    good = write(tmp_path / "c.yml", 'services:\n  api:\n    image: x\n    ports: ["5001:8000"]\n')
    half = run_cli("compose-check", str(good), "--model", "model_a")
    assert half.exit_code == 2 and "--model and --app go together" in half.stderr
    missing = run_cli("compose-check", str(tmp_path / "absent.yml"))
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: cannot read ")
    no_env = run_cli("compose-check", str(good), "--env-file", str(tmp_path / "none.env"))
    assert no_env.exit_code == 1 and "does not exist" in no_env.stderr
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    refused = run_cli("compose-check", str(fifo))
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"Error: compose file {fifo} is not a regular file (a FIFO); refusing to read it\n",
    )


# --- hostile files -----------------------------------------------------------------------


def _alias_bomb(levels: int, *, in_ports: bool = False) -> str:
    lines = ['a0: &a0 ["5001:80"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return (
        "x-bomb:\n"
        + "".join(f"  {line}\n" for line in lines)
        + (f"services:\n  web:\n    image: x\n    ports: *a{levels - 1}\n" if in_ports else "")
    )


def _run_script(tmp_path: Path, ledger_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [portalloc_script(), "--ledger", str(ledger_path), *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=tmp_path,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("text", "stderr"),
    [
        (_alias_bomb(9), "expands to more than 200,000 values (a YAML alias bomb?)"),
        # 200, under libyaml's own limit (1,000, a YAML error of its own), over portalloc's.
        ("services:\n  web:\n    x: " + "[" * 200 + "]" * 200 + "\n", "nests deeper than 64 levels"),
        ("services: {" * 5000 + "}" * 5000 + "\n", "nests deeper than 64 levels"),
    ],
    ids=["alias bomb", "200 deep", "5,000 deep flow mappings"],
)
def test_hostile_yaml_ends_in_one_error_line(tmp_path: Path, ledger_path: Path, text: str, stderr: str) -> None:
    allocate(ledger_path)
    write(tmp_path / "compose.yaml", text)
    result = _run_script(tmp_path, ledger_path, "compose-check", "compose.yaml")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line == f"Error: compose.yaml {stderr}; refusing to read it"


def test_alias_bomb_under_the_limit_in_ports_gives_short_findings(tmp_path: Path, ledger_path: Path) -> None:
    allocate(ledger_path)
    write(tmp_path / "compose.yaml", _alias_bomb(5, in_ports=True))  # 9**4 = 6,561 values, in ports
    result = _run_script(tmp_path, ledger_path, "compose-check", "compose.yaml")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "services.web.ports[0] <a list of 9 items>: must be a number, a string or a mapping"
    assert lines[-1].startswith("9 problems in compose.yaml")


def test_huge_ranges_are_bounded_and_summarised(tmp_path: Path, ledger_path: Path) -> None:
    """60 lines of 1024-65535:1024-65535 once took 28 s and 1.9 GB and printed 3.8 M lines."""
    allocate(ledger_path)
    ports = "".join('      - "1024-65535:1024-65535"\n' for _ in range(60))
    write(tmp_path / "compose.yaml", f"services:\n  web:\n    image: x\n    ports:\n{ports}")
    result = _run_script(tmp_path, ledger_path, "compose-check", "compose.yaml")
    assert result.returncode == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 52  # 50 findings, one "… and N more", one summary
    assert lines[0] == (
        "services.web.ports[0] '1024-65535:1024-65535' publishes host ports 1024-65535, "
        "which includes port 5001, model_a/1's backend (and 3 more ledger ports) "
        "(pass --model/--app if this file is that app's)"
    )
    assert lines[50] == "… and 69 more findings (fix these first)"
    assert lines[51].startswith("119 problems in compose.yaml (60 published ports against the ledger)")


def test_deep_interpolation_and_long_values_end_in_short_findings(tmp_path: Path, ledger_path: Path) -> None:
    allocate(ledger_path)
    deep = "${A:-" * 1000 + "5001" + "}" * 1000
    write(
        tmp_path / "compose.yaml",
        f"services:\n  web:\n    image: x\n    ports: [{json.dumps(deep)}, {json.dumps('9' * 100_000 + ':80')}]\n",
    )
    result = _run_script(tmp_path, ledger_path, "compose-check", "compose.yaml")
    assert result.returncode == 1 and result.stderr == ""
    first, second, summary = result.stdout.splitlines()
    assert first.endswith("services.web.ports[0]: ${…} nested more than 32 deep")
    assert second == f"services.web.ports[1] '{'9' * 58}…: invalid hostPort: '{'9' * 58}…"
    assert summary.startswith("2 problems")


def test_compose_file_too_large_or_not_utf8(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (4 * 1024 * 1024 + 1))
    with pytest.raises(UnsafeFile, match="the limit is 4,194,304"):
        load_project([big], environ={})
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"services: {}\n# caf\xe9\n")
    with pytest.raises(ComposeFileError, match="is not UTF-8"):
        load_project([latin], environ={})
