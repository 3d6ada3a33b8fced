"""``portalloc compose-check`` and the compose reading behind it (``portalloc.compose``)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from portalloc import PortAllocationService
from portalloc.compose import Published, Unresolved, check_ports, interpolate, load_compose, published_ports
from portalloc.errors import ComposeFileError
from tests.conftest import RunCli


def ports_of(tmp_path: Path, yaml_text: str, variables: dict[str, str] | None = None) -> list[tuple[str, str, int]]:
    path = tmp_path / "docker-compose.yml"
    path.write_text(textwrap.dedent(yaml_text))
    found, notes = published_ports(load_compose(path), variables or {})
    assert notes == []
    return [(p.service, p.host_ip, p.port) for p in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("$A-x", "1-x"),
        ("$$A", "$A"),
        ("${UNSET:-5001}", "5001"),
        ("${EMPTY:-5001}", "5001"),
        ("${EMPTY-5001}", ""),
        ("${A:-5001}", "1"),
        ("${UNSET:-${A}0}", "10"),
        ("${A:+on}|${UNSET:+on}", "on|"),
        ("${A:?needed}", "1"),
        ("127.0.0.1:${A}:80", "127.0.0.1:1:80"),
    ],
)
def test_interpolation(text: str, expected: str) -> None:
    assert interpolate(text, {"A": "1", "EMPTY": ""}) == expected


@pytest.mark.parametrize("text", ["${UNSET}", "$UNSET", "${UNSET:?set it}", "${EMPTY:?x}", "${A"])
def test_unresolved(text: str) -> None:
    with pytest.raises(Unresolved):
        interpolate(text, {"A": "1", "EMPTY": ""})


def test_short_syntax(tmp_path: Path) -> None:
    found = ports_of(
        tmp_path,
        """\
        services:
          web:
            ports:
              - "3000"              # container only: compose picks the host port
              - 3001                # the same, as a number
              - "5001:80"
              - 22:22               # YAML 1.1 would read 1342 (base 60); compose reads "22:22"
              - "127.0.0.1:8001:8001"
              - "127.0.0.1::9000"   # IP but no host port
              - "[::1]:6001:6001"
              - "::1:6002:6002"
              - "9090-9091:8080-8081"
              - "7000:7000/udp"     # ledger ports are TCP
              - "7001:7001/tcp"
        """,
    )
    assert found == [
        ("web", "", 5001),
        ("web", "", 22),
        ("web", "127.0.0.1", 8001),
        ("web", "::1", 6001),
        ("web", "::1", 6002),
        ("web", "", 9090),
        ("web", "", 9091),
        ("web", "", 7001),
    ]


def test_long_syntax_and_variables(tmp_path: Path) -> None:
    found = ports_of(
        tmp_path,
        """\
        services:
          api:
            ports:
              - target: 80
                published: "${BACKEND_PORT:-5001}"
                host_ip: 127.0.0.1
              - target: 81
                published: 5010-5011
              - target: 82          # not published
              - target: 53
                published: 5353
                protocol: udp
          front:
            ports: ["${FRONTEND_PORT}:3000"]
        """,
        {"FRONTEND_PORT": "8003"},
    )
    assert found == [("api", "127.0.0.1", 5001), ("api", "", 5010), ("api", "", 5011), ("front", "", 8003)]


def test_unresolved_mapping_is_a_note_not_a_guess(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text('services:\n  web:\n    ports: ["${NOPE}:80", "5001:80"]\n')
    found, notes = published_ports(load_compose(path), {})
    assert [p.port for p in found] == [5001]
    assert notes == ["services.web.ports[0] ('${NOPE}:80') not checked: ${NOPE} is not set"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: [", "is not valid YAML"),
        ("version: '3'\n", "has no 'services' mapping"),
        ("services:\n  web:\n    ports: '5001:80'\n", "services.web.ports is not a list"),
        ("services:\n  web:\n    ports: ['50x1:80']\n", "is not a port or a port range"),
        ("services:\n  web:\n    ports: ['70000:80']\n", "is not a valid port range"),
        ("services:\n  web:\n    ports: [{published: 5001}]\n", "has no 'target'"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ComposeFileError, match=message):
        published_ports(load_compose(path), {})


def test_check_ports_rules() -> None:
    entries = [("model_a", 1, 5001, 8001), ("model_b", 1, 5003, 8003)]

    def pub(port: int, service: str = "web") -> Published:
        return Published(service, f"services.{service}.ports[0] '{port}:80'", "", port)

    assert check_ports([pub(5001), pub(8001)], entries, ("model_a", 1)) == []
    messages = [f.message for f in check_ports([pub(5003), pub(5005), pub(5001, "api")], entries, ("model_a", 1))]
    assert messages == [
        "services.web.ports[0] '5003:80' publishes host port 5003, which is model_b/1's backend port",
        "services.web.ports[0] '5005:80' publishes host port 5005, not model_a/1's backend 5001 or frontend 8001",
    ]
    duplicate = check_ports([pub(5001), pub(5001, "api")], entries, ("model_a", 1))
    assert [f.message for f in duplicate] == [
        "services.api.ports[0] '5001:80' publishes host port 5001, already published by services.web.ports[0] '5001:80'"
    ]
    # The app unknown: any port the ledger holds is reported, with whose it is.
    (unknown,) = check_ports([pub(8003), pub(9999)], entries, None)
    assert unknown.message.endswith(
        "which is model_b/1's frontend port (pass --model/--app if this file is that app's)"
    )
    (missing,) = check_ports([], entries, ("model_c", 1))
    assert missing.message.startswith("model_c/1 has no allocation in the ledger")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def allocate(ledger_path: Path) -> None:
    PortAllocationService(ledger_path, probe=False).allocate_many([("model_a", 1), ("model_b", 1)])


def test_compose_check_catches_a_wrong_mapping(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    allocate(ledger_path)  # model_a/1 → 5001/8001, model_b/1 → 5003/8003
    good = write(
        tmp_path / "good.yml", 'services:\n  api:\n    ports: ["5001:8000"]\n  web:\n    ports: ["8001:3000"]\n'
    )
    ok = run_cli("compose-check", str(good), "--model", "model_a", "--app", "1")
    assert (ok.exit_code, ok.stdout) == (
        0,
        f"OK: 2 published ports in {good}, checked against model_a/1's pair and the ledger\n",
    )
    wrong = write(tmp_path / "wrong.yml", 'services:\n  api:\n    ports: ["5003:8000"]\n')
    bad = run_cli("compose-check", str(wrong), "--model", "model_a", "--app", "1")
    assert bad.exit_code == 1
    assert bad.stdout.splitlines() == [
        "services.api.ports[0] '5003:8000' publishes host port 5003, which is model_b/1's backend port",
        f"1 problem in {wrong} (1 published port against model_a/1's pair and the ledger)",
    ]
    as_json = json.loads(run_cli("compose-check", str(wrong), "--model", "model_a", "--app", "1", "--json").stdout)
    assert as_json["app"] == {"model": "model_a", "app_num": 1}
    assert [f["port"] for f in as_json["findings"]] == [5003]


def test_compose_check_reads_env_beside_the_file_and_the_environment_wins(
    run_cli: RunCli, ledger_path: Path, tmp_path: Path
) -> None:
    allocate(ledger_path)
    app = tmp_path / "apps" / "model_a" / "app1"
    compose_file = write(app / "docker-compose.yml", 'services:\n  api:\n    ports: ["${BACKEND_PORT}:8000"]\n')
    assert run_cli("dotenv", "model_a", "1", str(app / ".env")).exit_code == 0
    # The app comes from the path (apps/model_a/app1), the port from the .env portalloc wrote.
    ok = run_cli("compose-check", str(compose_file))
    assert ok.exit_code == 0, ok.stdout
    assert "against model_a/1's pair" in ok.stdout
    overridden = run_cli("compose-check", str(compose_file), env={"BACKEND_PORT": "5003"})
    assert overridden.exit_code == 1
    assert "which is model_b/1's backend port" in overridden.stdout


def test_compose_check_errors(run_cli: RunCli, ledger_path: Path, tmp_path: Path) -> None:
    allocate(ledger_path)
    good = write(tmp_path / "c.yml", 'services:\n  api:\n    ports: ["5001:8000"]\n')
    half = run_cli("compose-check", str(good), "--model", "model_a")
    assert half.exit_code == 2 and "--model and --app go together" in half.stderr
    missing = run_cli("compose-check", str(tmp_path / "absent.yml"))
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: cannot read ")
    no_env = run_cli("compose-check", str(good), "--env-file", str(tmp_path / "none.env"))
    assert no_env.exit_code == 1 and "does not exist" in no_env.stderr
