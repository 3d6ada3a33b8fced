"""Shell completion in the real bash, zsh and fish: commands, options, and MODEL / APP_NUM from the ledger.

Each shell loads the script ``portalloc`` prints for it (``_PORTALLOC_COMPLETE=<shell>_source``)
and asks it what completes a command line; the script then calls the real ``portalloc``
of this worktree, as it would on a user's Tab. zsh's ``compadd`` and ``_describe`` only
work inside a completion widget, so they are replaced by functions that print what
they are given; everything else is zsh's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portalloc.cli.completion import ledger_keys
from tests.conftest import portalloc_script, subprocess_env

ROWS = [
    {"model": "model_a", "app_num": 1, "backend": 5001, "frontend": 8001},
    {"model": "model_a", "app_num": 12, "backend": 5003, "frontend": 8003},
    {"model": "model_b", "app_num": 7, "backend": 5005, "frontend": 8005},
]
LEDGER = {
    "version": 1,
    "policy": {"backend_start": 5001, "frontend_start": 8001, "step": 2, "max_port": 65535},
    "allocations": ROWS,
}


def needs(shell: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(shell) is None, reason=f"{shell} is not installed (CI installs it)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git work tree whose default ledger holds ``ROWS``."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "portalloc.json").write_text(json.dumps(LEDGER))
    return tmp_path


def shell_env(**extra: str) -> dict[str, str]:
    bin_dir = str(Path(portalloc_script()).parent)
    return subprocess_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **extra)


BASH = """
eval "$(_PORTALLOC_COMPLETE=bash_source portalloc)"
complete -p portalloc >/dev/null || exit 3
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
_portalloc_completion portalloc
printf '%s\\n' "${COMPREPLY[@]}"
"""

ZSH = """
autoload -Uz compinit && compinit -u -D
source <(_PORTALLOC_COMPLETE=zsh_source portalloc)
[[ $_comps[portalloc] == _portalloc_completion ]] || exit 3
compadd() { print -rl -- "${(@P)${@[-1]}}" }
_describe() { print -rl -- "${(@P)3}" }
words=("$@")
CURRENT=$#
_portalloc_completion
"""

FISH = """
_PORTALLOC_COMPLETE=fish_source portalloc | source
complete -C"$argv"
"""


def complete(shell: str, words: list[str], cwd: Path, **env: str) -> list[str]:
    """What ``shell`` offers for the last of ``words`` (``""`` for a new word), one entry per line, no help text."""
    if shell == "bash":
        argv = ["bash", "--norc", "-c", BASH, "bash", *words]
    elif shell == "zsh":
        argv = ["zsh", "-f", "-c", ZSH, "zsh", *words]
    else:
        argv = ["fish", "--no-config", "-c", FISH, " ".join(words)]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=shell_env(**env), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    # zsh shows "name:help", fish "name<TAB>help": the candidate is what comes first.
    return [line.split("\t")[0].split(":")[0] for line in done.stdout.splitlines() if line]


SHELLS = [pytest.param(shell, marks=needs(shell)) for shell in ("bash", "zsh", "fish")]


@pytest.mark.parametrize("shell", SHELLS)
def test_commands_options_models_and_app_numbers(shell: str, project: Path) -> None:
    before = (project / "portalloc.json").read_bytes()
    assert complete(shell, ["portalloc", "g"], project) == ["get", "get-many", "git-setup"]
    assert {"--ledger", "--lock-timeout"} <= set(complete(shell, ["portalloc", "--l"], project))
    assert set(complete(shell, ["portalloc", "get", "--"], project)) >= {"--json", "--field"}
    assert complete(shell, ["portalloc", "get", ""], project) == ["model_a", "model_b"]
    assert complete(shell, ["portalloc", "run", "model_a", ""], project) == ["1", "12"]
    assert complete(shell, ["portalloc", "release", "model_a", "1"], project) == ["1", "12"]
    assert complete(shell, ["portalloc", "env", "model_b", ""], project) == ["7"]
    assert (project / "portalloc.json").read_bytes() == before  # completing never allocates nor rewrites


@pytest.mark.parametrize("shell", SHELLS)
def test_the_ledger_is_the_one_the_command_line_names(shell: str, project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**LEDGER, "allocations": [{**ROWS[0], "model": "elsewhere"}]}))
    assert complete(shell, ["portalloc", "--ledger", str(other), "get", ""], project) == ["elsewhere"]
    assert complete(shell, ["portalloc", "get", ""], project, PORTALLOC_LEDGER=str(other)) == ["elsewhere"]


@needs("bash")
def test_no_ledger_completes_nothing_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    assert complete("bash", ["portalloc", "get", ""], tmp_path) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == [".git"]


def test_ledger_keys_of_real_files(tmp_path: Path) -> None:
    ledger = tmp_path / "portalloc.json"
    ledger.write_text(json.dumps(LEDGER))
    assert ledger_keys(ledger) == [("model_a", 1), ("model_a", 12), ("model_b", 7)]
    assert ledger_keys(tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text('{"allocations": [')
    assert ledger_keys(tmp_path / "bad.json") == []
    (tmp_path / "odd.json").write_text('{"allocations": [{"model": 3, "app_num": 1}, {"model": "m", "app_num": "1"}]}')
    assert ledger_keys(tmp_path / "odd.json") == []
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert ledger_keys(fifo) == []  # returns at once: a FIFO is never opened for a blocking read


def test_a_name_given_twice_completes_nothing_as_every_reader_refuses_it(tmp_path: Path) -> None:
    # A careless merge can write "allocations" twice; json.loads keeps the last, which no other reader accepts.
    row = '{"model": "ghost", "app_num": 1, "backend": 5001, "frontend": 8001}'
    for text in (
        '{"version": 1, "allocations": [], "allocations": [' + row + "]}",
        '{"version": 1, "allocations": [' + row.replace('"app_num": 1', '"app_num": 1, "app_num": 2') + "]}",
    ):
        ledger = tmp_path / "portalloc.json"
        ledger.write_text(text)
        assert ledger_keys(ledger) == []


def test_completing_imports_neither_pydantic_nor_filelock(project: Path) -> None:
    probe = (
        "import sys\n"
        "from portalloc.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=project,
        capture_output=True,
        text=True,
        env=subprocess_env(_PORTALLOC_COMPLETE="bash_complete", COMP_LINE="portalloc get model_a "),
        timeout=60,
    )
    assert done.stdout.split() == ["plain,1", "plain,12"]
    modules = set(done.stderr.split())
    assert "portalloc" in modules and not modules & {"pydantic", "pydantic_core", "filelock"}
