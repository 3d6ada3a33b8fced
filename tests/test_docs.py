"""The console examples in README.md and misc/*.md run, and print what they show.

The blocks are found and run with sybil (a well-kept documentation tester: it parses
Markdown, keeps one namespace per document, and has a standard skip directive), with a
parser of our own for terminal sessions, because what we check is a shell's output,
not Python.

The convention, for everyone who writes a document under misc/:

* A fenced block whose language is ``console`` is a terminal session. A line that
  starts with ``$ `` is a command (a command ending in ``\\`` goes on on the next line);
  the lines after it, up to the next ``$ `` line or the end of the block, are its
  exact output, stdout and stderr together as a terminal shows them. A block must start
  with a ``$ `` line. Blocks in other languages (``bash``, ``text``, ``json``…) are not run.
* Every document gets one fresh directory, a git repository with nothing in it (git's
  user name and e-mail are set, the first branch is ``main``). Its blocks run in that
  directory, one after the other, in the order they appear, so a document can tell a
  story: a ledger made in one block is there in the next. Each block is one ``bash``
  session (``set`` variables and ``cd`` last to the end of the block; the next block
  starts in the directory again).
* ``portalloc`` on PATH is the one under test; ``PORTALLOC_PROBE=0`` is set so that the
  ports of the machine the docs run on do not change the answers (a block that shows
  probing turns it on with ``--probe``); no other ``PORTALLOC_*`` variable is set;
  ``HOME`` is the directory's parent, so the host lease store is the document's own
  (``~/.local/state/portalloc`` there); stdin is empty; a block must finish within two minutes.
* An exit status is not checked by itself: show it where it matters (``$ portalloc
  check; echo "exit $?"``).
* Normalised on both sides before comparing: the directory's absolute path shows as
  ``~/project``; ``pid 12345`` matches any pid; a duration such as ``12.3 ms``, ``4 s`` or
  ``0.8 µs`` matches any duration in the same unit. An output line that is exactly
  ``...`` matches any number of lines (zero included).
* A block that cannot run in CI (it needs a network, a browser, a long benchmark) is
  marked by ``<!-- skip: next -->`` on the line before it (sybil's skip directive).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from tests.conftest import portalloc_script, subprocess_env

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "misc").glob("*.md"))]
SHOWN_DIRECTORY = "~/project"
BLOCK_TIMEOUT = 120

_MARK = "@@portalloc-docs-command-{}@@"
_PID = re.compile(r"\bpid \d+")
_DURATION = re.compile(r"\b\d+(?:[.,]\d+)?\s?(ns|µs|us|ms|s|min)\b")


def parse_session(block: str) -> list[tuple[str, str]]:
    """``[(command, expected output)…]`` of a console block; a block not starting with ``$ `` is an error."""
    lines = block.splitlines()
    if not lines or not lines[0].startswith("$ "):
        raise ValueError("a console block must start with a '$ ' line")
    session: list[tuple[str, list[str]]] = []
    continued = False
    for line in lines:
        if continued:
            session[-1] = (f"{session[-1][0]}\n{line}", [])
        elif line.startswith("$ "):
            session.append((line[2:], []))
        else:
            session[-1][1].append(line)
        continued = (line.startswith("$ ") or continued) and line.endswith("\\") and not session[-1][1]
    return [(command, "".join(f"{line}\n" for line in output)) for command, output in session]


def normalise(text: str, directory: Path) -> str:
    """``text`` with what differs from run to run (the directory, pids, durations) made uniform."""
    for path in {str(directory.resolve()), str(directory)}:
        text = text.replace(path, SHOWN_DIRECTORY)
    text = _PID.sub("pid N", text)
    return _DURATION.sub(lambda match: f"N {match.group(1)}", text)


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is ``expected``, where an expected line ``...`` stands for any lines."""
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected.splitlines())
    return re.fullmatch(pattern, actual) is not None


def run_session(session: list[tuple[str, str]], directory: Path) -> list[str]:
    """Run the commands in one bash in ``directory``; the output of each, in order."""
    script = "".join(f"printf '%s\\n' '{_MARK.format(i)}'\n{command}\n" for i, (command, _) in enumerate(session))
    bin_dir = str(Path(portalloc_script()).parent)
    env = subprocess_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        GIT_AUTHOR_NAME="Docs",
        GIT_AUTHOR_EMAIL="docs@example.com",
        GIT_COMMITTER_NAME="Docs",
        GIT_COMMITTER_EMAIL="docs@example.com",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(directory.parent),
    )
    del env["PORTALLOC_STATE_DIR"]  # the default under HOME, as a user has it: the document's own
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=BLOCK_TIMEOUT,
    )
    outputs = re.split(r"^@@portalloc-docs-command-\d+@@\n", done.stdout, flags=re.MULTILINE)
    return outputs[1:]


def evaluate_console(example: Example) -> str | None:
    """sybil's evaluator for a console block: ``None`` if every command printed what the block shows."""
    directory: Path = example.namespace["directory"]
    try:
        session = parse_session(str(example.parsed))
    except ValueError as error:
        return str(error)
    for (command, expected), actual in zip(session, run_session(session, directory), strict=True):
        shown, got = normalise(expected, directory), normalise(actual, directory)
        if not matches(shown, got):
            return f"$ {command}\n--- shown in the document\n{shown}--- printed\n{got}"
    return None


SYBIL = Sybil(parsers=[CodeBlockParser(language="console", evaluator=evaluate_console), SkipParser()])


def new_project(base: Path) -> Path:
    """An empty git repository named ``project`` under ``base``, its first branch ``main``."""
    directory = base / "project"
    directory.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(directory)], check=True, env=subprocess_env())
    return directory


def run_document(path: Path, base: Path) -> None:
    """Run every console block of ``path``, in order, in one new project under ``base``."""
    document = SYBIL.parse(path)
    namespace: dict[str, Any] = document.namespace
    namespace["directory"] = new_project(base)
    for example in document.examples():
        example.evaluate()


@pytest.mark.parametrize("path", DOCUMENTS, ids=[str(path.relative_to(ROOT)) for path in DOCUMENTS])
def test_console_blocks_print_what_they_show(path: Path, tmp_path: Path) -> None:
    run_document(path, tmp_path)


def test_the_readme_has_console_blocks() -> None:
    assert len(list(SYBIL.parse(ROOT / "README.md").examples())) >= 5


def test_a_block_that_shows_the_wrong_output_fails(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```console\n$ portalloc get model_a 1\nmodel_a/1: backend 5001, frontend 8001\n```\n\n"
        "The second block sees the ledger of the first:\n\n"
        "```console\n$ portalloc get model_b 1 --field backend\n5001\n```\n"
    )
    with pytest.raises(AssertionError, match="--- printed\n5003\n"):
        run_document(doc, tmp_path)


def test_skip_ellipsis_continuation_and_normalising(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- skip: next -->\n```console\n$ false-command-that-does-not-exist\nnever compared\n```\n\n"
        "```console\n$ portalloc list\nNo allocations in ~/project/portalloc.json.\n"
        "$ printf 'a\\nb\\nc\\npid 42 took 9.5 ms\\n'\n...\nc\npid 1 took 0.1 ms\n"
        '$ echo one \\\n  two\none two\n$ portalloc check; echo "exit $?"\n...\nexit 1\n```\n'
    )
    run_document(doc, tmp_path)  # the skipped block would fail: its command does not exist


def test_a_block_must_start_with_a_command() -> None:
    with pytest.raises(ValueError, match="must start with a '\\$ ' line"):
        parse_session("output without a command\n")
