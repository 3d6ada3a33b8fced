"""The runnable examples do what the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_env

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_seed_story_prints_the_before_and_after() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "seed_story.py")], capture_output=True, text=True, env=subprocess_env()
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
