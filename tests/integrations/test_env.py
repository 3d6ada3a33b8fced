"""``portalloc env`` and the variable names and text forms behind it (``portalloc.integrations.envvars``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from portalloc.errors import InvalidVariableName
from portalloc.integrations.envvars import check_prefix, format_variables, port_variables
from tests.conftest import RunCli, portalloc_script, subprocess_env


def test_port_variables_names_order_and_port() -> None:
    assert list(port_variables(5001, 8001).items()) == [("BACKEND_PORT", "5001"), ("FRONTEND_PORT", "8001")]
    assert port_variables(5001, 8001, "APP_", port_var=True) == {
        "APP_BACKEND_PORT": "5001",
        "APP_FRONTEND_PORT": "8001",
        "PORT": "5001",
    }


@pytest.mark.parametrize("prefix", ["1X_", "APP-", "A B", "É_", "$X", "a=b"])
def test_invalid_prefixes_are_rejected(prefix: str) -> None:
    with pytest.raises(InvalidVariableName):
        check_prefix(prefix)


@pytest.mark.parametrize("prefix", ["", "APP_", "_", "my2_"])
def test_valid_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


def test_formats() -> None:
    variables = port_variables(5001, 8001)
    assert format_variables(variables, "shell") == "export BACKEND_PORT=5001\nexport FRONTEND_PORT=8001\n"
    assert format_variables(variables, "dotenv") == "BACKEND_PORT=5001\nFRONTEND_PORT=8001\n"
    assert json.loads(format_variables(variables, "json")) == {"BACKEND_PORT": "5001", "FRONTEND_PORT": "8001"}
    with pytest.raises(InvalidVariableName):
        format_variables({"NOT OK": "1"}, "shell")


@pytest.mark.usefixtures("new_ledger")
def test_env_allocates_and_prints_the_same_pair_as_get(run_cli: RunCli) -> None:
    result = run_cli("env", "model_a", "1")
    assert result.exit_code == 0
    pair = json.loads(run_cli("get", "--json", "model_a", "1").stdout)
    assert result.stdout == f"export BACKEND_PORT={pair['backend']}\nexport FRONTEND_PORT={pair['frontend']}\n"


@pytest.mark.usefixtures("new_ledger")
def test_env_formats_and_prefix(run_cli: RunCli) -> None:
    run_cli("get", "model_a", "1")
    pair = json.loads(run_cli("get", "--json", "model_a", "1").stdout)
    dotenv = run_cli("env", "model_a", "1", "--format", "dotenv", "--prefix", "APP_").stdout
    assert dotenv == f"APP_BACKEND_PORT={pair['backend']}\nAPP_FRONTEND_PORT={pair['frontend']}\n"
    as_json = json.loads(run_cli("env", "model_a", "1", "--format", "json").stdout)
    assert as_json == {"BACKEND_PORT": str(pair["backend"]), "FRONTEND_PORT": str(pair["frontend"])}


def test_invalid_prefix_and_format_are_usage_errors_and_allocate_nothing(run_cli: RunCli, ledger_path: Path) -> None:
    for args in (["--prefix", "1X"], ["--format", "yaml"]):
        result = run_cli("env", "model_a", "1", *args)
        assert result.exit_code == 2
        assert result.stderr.startswith("Error: Invalid value for '--")
    assert not ledger_path.exists()


@pytest.mark.usefixtures("new_ledger")
def test_shell_output_is_safe_to_eval(ledger_path: Path) -> None:
    script = 'eval "$("$0" --ledger "$1" env model_a 1)" && echo "$BACKEND_PORT $FRONTEND_PORT"'
    result = subprocess.run(
        ["sh", "-c", script, portalloc_script(), str(ledger_path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=True,
    )
    pair = json.loads(ledger_path.read_text())["allocations"][0]
    assert result.stdout == f"{pair['backend']} {pair['frontend']}\n"


@pytest.mark.usefixtures("new_ledger")
def test_port_var_adds_port_as_run_sets_it(run_cli: RunCli) -> None:
    assert run_cli("env", "model_a", "1", "--port-var", "--format", "dotenv").stdout == (
        "BACKEND_PORT=5001\nFRONTEND_PORT=8001\nPORT=5001\n"
    )
    assert "PORT" not in run_cli("env", "model_a", "1", "--format", "dotenv").stdout.replace("_PORT", "")


def test_compose_project_names_are_what_compose_accepts() -> None:
    from portalloc.integrations.envvars import compose_project_name

    assert compose_project_name("Shop", "feature/X.2") == "shop-feature-x-2"
    assert compose_project_name("__", "") == "portalloc"
    assert compose_project_name("-web-") == "web"
