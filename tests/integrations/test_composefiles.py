"""The project compose reads by itself (discovery, override files, several ``-f``, ``COMPOSE_FILE``,
``--project-directory``, ``--env-file``), judged by the real ``docker compose config``.

Each case is a small tree of files, a directory to run in and compose's own options;
both sides must publish the same host ports (or both refuse).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portalloc.errors import ComposeFileError
from portalloc.integrations.compose import load_project
from tests.compose_judge import Rejected, compose_project_published, judge_env, published_by
from tests.conftest import RunCli

pytestmark = pytest.mark.compose

WEB = 'services:\n  web:\n    image: x\n    ports: ["${BACKEND_PORT:-5001}:8000"]\n'
DEBUG = 'services:\n  web:\n    ports: ["5005:9229"]\n'

#: ``(files: {relative path: text}, run in, compose options, environment)``.
CASES: dict[str, tuple[dict[str, str], str, list[str], dict[str, str]]] = {
    "override beside compose.yaml": ({"compose.yaml": WEB, "compose.override.yaml": DEBUG}, ".", [], {}),
    "override found from a subdirectory": (
        {"compose.yaml": WEB, "compose.override.yaml": DEBUG, "src/deep/.keep": ""},
        "src/deep",
        [],
        {},
    ),
    "compose.yaml wins over docker-compose.yml; compose.override.yml over the rest": (
        {
            "compose.yaml": WEB,
            "docker-compose.yml": 'services:\n  old:\n    image: x\n    ports: ["5007:1"]\n',
            "compose.override.yml": DEBUG,
            "compose.override.yaml": 'services:\n  web:\n    ports: ["5009:1"]\n',
            "docker-compose.override.yml": 'services:\n  web:\n    ports: ["5011:1"]\n',
        },
        ".",
        [],
        {},
    ),
    "legacy names with their override": (
        {"docker-compose.yaml": WEB, "docker-compose.override.yaml": DEBUG},
        ".",
        [],
        {},
    ),
    "variables from .env in the override": (
        {
            "compose.yaml": WEB,
            "compose.override.yaml": DEBUG.replace("5005", "${DEBUG_PORT}"),
            ".env": "DEBUG_PORT=5013\n",
        },
        ".",
        [],
        {},
    ),
    "the working directory's .env wins over the project's": (
        {"compose.yaml": WEB, ".env": "BACKEND_PORT=5015\n", "sub/.env": "BACKEND_PORT=5017\n"},
        "sub",
        [],
        {},
    ),
    "several -f merged in order": (
        {
            "base.yaml": 'services:\n  web:\n    image: x\n    ports: ["5001:80", "127.0.0.1:5003:81"]\n',
            "dev.yaml": 'services:\n  web:\n    ports: ["5001:80", "5005:9229"]\n  db:\n    image: y\n'
            '    ports: ["5007:5432"]\n',
            "ci.yaml": 'services:\n  db:\n    ports: !override ["5009:5432"]\n',
        },
        ".",
        ["-f", "base.yaml", "-f", "dev.yaml", "-f", "ci.yaml"],
        {},
    ),
    "-f skips discovery and its override": (
        {"compose.yaml": WEB, "compose.override.yaml": DEBUG, "other.yaml": WEB.replace("5001", "5019")},
        ".",
        ["-f", "other.yaml"],
        {},
    ),
    "COMPOSE_FILE from the environment": (
        {"a.yaml": WEB, "b.yaml": DEBUG, "compose.yaml": 'services:\n  no:\n    image: x\n    ports: ["5021:1"]\n'},
        ".",
        [],
        {"COMPOSE_FILE": "a.yaml:b.yaml"},
    ),
    "COMPOSE_FILE and COMPOSE_PATH_SEPARATOR from .env": (
        {
            "a.yaml": WEB,
            "conf/b.yaml": DEBUG,
            ".env": "COMPOSE_FILE=a.yaml;conf/b.yaml\nCOMPOSE_PATH_SEPARATOR=;\nBACKEND_PORT=5023\n",
        },
        ".",
        [],
        {},
    ),
    "--project-directory: files looked for there, its .env read": (
        {"proj/compose.yaml": WEB, "proj/compose.override.yaml": DEBUG, "proj/.env": "BACKEND_PORT=5025\n"},
        ".",
        ["--project-directory", "proj"],
        {},
    ),
    "--env-file replaces .env": (
        {"compose.yaml": WEB, ".env": "BACKEND_PORT=5027\n", "ci.env": "BACKEND_PORT=5029\n"},
        ".",
        ["--env-file", "ci.env"],
        {},
    ),
    "several --env-file: a later one wins": (
        {
            "compose.yaml": WEB + '  db:\n    image: y\n    ports: ["${DB_PORT}:5432"]\n',
            ".env": "BACKEND_PORT=5027\n",
            "a.env": "BACKEND_PORT=5029\nDB_PORT=5033\n",
            "b.env": "BACKEND_PORT=5035\n",
        },
        ".",
        ["--env-file", "a.env", "--env-file", "b.env"],
        {},
    ),
    "the environment wins over every .env": (
        {"compose.yaml": WEB, ".env": "BACKEND_PORT=5027\n"},
        ".",
        [],
        {"BACKEND_PORT": "5031"},
    ),
}


def _options(args: list[str]) -> tuple[list[Path], Path | None, list[Path]]:
    files: list[Path] = []
    env_files: list[Path] = []
    project_directory = None
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag == "-f":
            files.append(Path(value))
        elif flag == "--project-directory":
            project_directory = Path(value)
        else:
            env_files.append(Path(value))
    return files, project_directory, env_files


@pytest.mark.parametrize("name", list(CASES))
def test_the_project_compose_reads_by_itself(tmp_path: Path, name: str) -> None:
    tree, where, args, env = CASES[name]
    for relative, text in tree.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    cwd = tmp_path / where
    theirs = compose_project_published(cwd, args, env)
    files, project_directory, env_files = _options(args)
    project = load_project(
        files, project_directory=project_directory, env_files=env_files, environ=judge_env(env), cwd=cwd
    )
    assert published_by(project) == theirs
    assert theirs  # every case publishes something: a pass means the same ports, not two empty sets


def test_no_compose_file_anywhere_is_refused_by_both(tmp_path: Path) -> None:
    with pytest.raises(Rejected):
        compose_project_published(tmp_path, [], {})
    with pytest.raises(ComposeFileError, match="no compose file in"):
        load_project(environ=judge_env(), cwd=tmp_path)


@pytest.mark.usefixtures("new_ledger")
def test_compose_check_without_a_file_sees_the_override(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: the override publishes another app's backend; the base file alone is clean."""
    for key in ("model_a", "model_b", "model_c"):
        assert run_cli("get", key, "1").exit_code == 0  # model_c/1 holds 5005/8005
    app = tmp_path / "apps" / "model_a" / "app1"
    app.mkdir(parents=True)
    (app / "compose.yaml").write_text(WEB.replace(":-5001", ""), encoding="utf-8")
    (app / "compose.override.yaml").write_text(DEBUG, encoding="utf-8")
    (app / ".env").write_text("BACKEND_PORT=5001\n", encoding="utf-8")
    monkeypatch.chdir(app)
    alone = run_cli("compose-check", "compose.yaml", "--model", "model_a", "--app", "1")
    assert alone.exit_code == 0, alone.output
    found = run_cli("compose-check", "--json")
    assert found.exit_code == 1
    report = json.loads(found.stdout)
    assert report["files"] == ["compose.yaml", "compose.override.yaml"]
    assert report["app"] == {"model": "model_a", "app_num": 1}  # from the directory, as with a named file
    assert [(f["kind"], f["port"]) for f in report["findings"]] == [("held", 5005)]
    plain = run_cli("compose-check")
    assert plain.stdout.splitlines()[-1] == (
        "1 problem in compose.yaml + compose.override.yaml (2 published ports against model_a/1's pair and the ledger)"
    )
