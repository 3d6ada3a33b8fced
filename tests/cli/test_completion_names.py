"""Tab in real interactive bash, zsh and fish (under tmux) completes every model name portalloc accepts.

A name with a space, a backslash, a colon (bash splits words there), a comma (fish's
old separator), a leading ``-``, a ``/`` or non-ASCII letters must land on the command
line quoted so that the shell hands portalloc exactly that name. Each shell loads the
script ``portalloc`` prints for it; a key binding then writes the command line's words,
as the shell itself parses them, to a file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.cli.test_completion import LEDGER, shell_env

#: Each name and what a user types before pressing Tab (as they would type it in any of the shells).
NAMES = {
    "my model": "my",
    "back\\slash": "back",
    "llama3:8b": "llama3:",
    "x,y": "x",
    "-lead": "-l",
    "openai/gpt-4o": "openai/",
    "modèle-ü": "mod",
    'it\'s "q" $HOME': "it",
}

RC = {
    "bash": """
eval "$(_PORTALLOC_COMPLETE=bash_source portalloc)"
_dump() { eval "set -- $READLINE_LINE" && printf '%s\\n' "$@" > "$DUMP"; }
bind -x '"\\C-t": _dump'
PS1='$ '
""",
    "zsh": """
autoload -Uz compinit && compinit -u -D
source <(_PORTALLOC_COMPLETE=zsh_source portalloc)
_dump() { print -rl -- "${(Q@)${(z)BUFFER}}" > "$DUMP" }
zle -N _dump
bindkey '^T' _dump
PS1='$ '
""",
    "fish": """
_PORTALLOC_COMPLETE=fish_source portalloc | source
function _dump; commandline -o > $DUMP; end
bind \\ct _dump
function fish_prompt; echo '$ '; end
""",
}


class Shell:
    """One interactive shell in a detached tmux session; ``complete`` types a line, Tab, and reads the words."""

    def __init__(self, shell: str, home: Path, cwd: Path) -> None:
        self.session = f"portalloc-{uuid.uuid4().hex[:8]}"
        self.dump = home / "words.txt"
        rc = home / ("config.fish" if shell == "fish" else ".zshrc" if shell == "zsh" else "bashrc")
        rc.write_text(RC[shell], encoding="utf-8")
        command = {
            "bash": f"bash --noprofile --rcfile {rc} -i",
            "zsh": "zsh -i",
            "fish": f"fish --no-config -i -C 'source {rc}'",
        }[shell]
        env = shell_env(ZDOTDIR=str(home), HOME=str(home), DUMP=str(self.dump), LANG="C.UTF-8", TERM="xterm")
        # A tmux server of its own, started with this environment: the shell inherits it whole.
        start = ["tmux", "-L", self.session, "-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", "200"]
        subprocess.run([*start, "-c", str(cwd), command], check=True, env=env)

    def keys(self, *keys: str, literal: bool = False) -> None:
        flags = ["-l"] if literal else []
        subprocess.run(["tmux", "-L", self.session, "send-keys", "-t", self.session, *flags, *keys], check=True)

    def complete(self, line: str) -> list[str]:
        """The words of the command line after typing ``line`` and pressing Tab once."""
        self.dump.unlink(missing_ok=True)
        self.keys(line, literal=True)
        self.keys("Tab")
        self.keys("C-t")
        deadline = time.monotonic() + 60  # a wait for the shell, not a timed assertion
        while not self.dump.exists() or not self.dump.read_text(encoding="utf-8").endswith("\n"):
            if time.monotonic() > deadline:
                screen = subprocess.run(
                    ["tmux", "-L", self.session, "capture-pane", "-p", "-t", self.session],
                    capture_output=True,
                    text=True,
                ).stdout
                raise AssertionError(f"the shell wrote no words; screen:\n{screen}")
            time.sleep(0.05)
        words = self.dump.read_text(encoding="utf-8").splitlines()
        self.keys("C-u")  # clear the line for the next case
        return words

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.session, "kill-server"], check=False)


def needs(shell: str) -> pytest.MarkDecorator:
    missing = shutil.which(shell) is None or shutil.which("tmux") is None
    return pytest.mark.skipif(missing, reason=f"{shell} or tmux is not installed (CI installs them)")


@pytest.mark.parametrize("shell", [pytest.param(s, marks=needs(s)) for s in ("bash", "zsh", "fish")])
def test_tab_completes_every_valid_name_quoted(shell: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()
    rows = [
        {"model": name, "app_num": 1, "backend": 5001 + 2 * i, "frontend": 8001 + 2 * i} for i, name in enumerate(NAMES)
    ]
    (project / "portalloc.json").write_text(json.dumps({**LEDGER, "allocations": rows}), encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    session = Shell(shell, home, project)
    try:
        for name, typed in NAMES.items():
            # A "-" name goes after "--", as click reads it.
            if name.startswith("-"):
                words = session.complete(f"portalloc get -- {typed}")
                assert words == ["portalloc", "get", "--", name], (name, words)
                # An option's value may start with "-" too: click's parser takes it as the value.
                words = session.complete(f"portalloc list --model {typed}")
                assert words == ["portalloc", "list", "--model", name], (name, words)
            else:
                words = session.complete(f"portalloc list --model {typed}")
                assert words == ["portalloc", "list", "--model", name], (name, words)
        # And the app number after such a name.
        assert session.complete("portalloc release llama3:8b ") == ["portalloc", "release", "llama3:8b", "1"]
        assert session.complete("portalloc release -- -lead ") == ["portalloc", "release", "--", "-lead", "1"]
    finally:
        session.close()


@needs("fish")
def test_fish_shows_descriptions_whole(tmp_path: Path) -> None:
    """click's fish script cut "Show the ledger's policy: its ranges, reserved ports, pools" at the comma."""
    script = '_PORTALLOC_COMPLETE=fish_source portalloc | source; complete -C"portalloc "'
    done = subprocess.run(
        ["fish", "--no-config", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=shell_env(), timeout=60
    )
    described = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    assert described["policy"].startswith("Show the ledger's policy: its ranges,")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("portalloc get ", [("portalloc", "portalloc"), ("get", "get"), ("", "")]),
        ("portalloc get my\\ mo", [("portalloc", "portalloc"), ("get", "get"), ("my mo", "my\\ mo")]),
        ("a 'it'\\''s' \"x\\\"y", [("a", "a"), ("it's", "'it'\\''s'"), ('x"y', '"x\\"y')]),
        ("a 'open quo", [("a", "a"), ("open quo", "'open quo")]),
        ("a back\\", [("a", "a"), ("back", "back\\")]),
    ],
)
def test_split_words_as_a_posix_shell_does(line: str, words: list[tuple[str, str]]) -> None:
    from portalloc.cli.shells import split_words

    assert split_words(line) == words


def test_bash_quoting_reads_back_as_the_name(tmp_path: Path) -> None:
    """Each quoting style, fed to bash, gives back exactly the name."""
    from portalloc.cli.shells import bash_quoted, replaced_from

    for name in NAMES:
        for begun in ("", "'", '"'):
            quoted = bash_quoted(name, begun)
            done = subprocess.run(["bash", "--norc", "-c", f"printf '%s' {quoted}"], capture_output=True, text=True)
            assert done.stdout == name, (name, begun, quoted)
    assert replaced_from("llama3:", " :") == len("llama3:")
    assert replaced_from("'a:b", " :") == 1  # inside an open quote, from after the quote
    assert replaced_from("a\\:b", " :") == 0  # an escaped break character does not break
