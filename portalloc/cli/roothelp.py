"""``portalloc --help`` without click: the root group's help texts, and click's help layout to print them.

``portalloc --help`` runs in a fresh interpreter, and importing click costs as much as
port-for's whole ``--help``. The texts live here, once: ``cli.main`` gives them to its
click group and options, and ``render`` lays them out the way click's ``HelpFormatter``
does (its ``write_usage``, ``write_text``, ``write_dl`` and ``wrap_text``, re-done with
``textwrap`` as click does), with the commands listed from ``cli.catalog`` as the group's
``format_commands`` lists them. ``tests/cli/test_quick.py`` renders click's own help at
every width click can choose and compares the two byte for byte, so a text or a layout
that drifts fails the suite.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Sequence

from portalloc.cli.catalog import COMMAND_SECTIONS, COMMANDS
from portalloc.core.limits import DEFAULT_LOCK_TIMEOUT

#: The root group's help (already as ``inspect.cleandoc`` leaves it). ``\b`` keeps the examples unwrapped.
ROOT_HELP = """Give every (model, app) its own backend/frontend port pair, kept in a JSON ledger.

\b
Examples:
  portalloc get model_a 1                  # model_a/1: backend 5001, frontend 8001
  portalloc run model_a 1 -- npm run dev   # with BACKEND_PORT, FRONTEND_PORT and PORT set
  portalloc --ledger ./portalloc.json list

Global options go before the command. Run 'portalloc COMMAND --help' for a command's options."""

LEDGER_HELP = "Ledger file [env: PORTALLOC_LEDGER; default: the nearest portalloc.json up to the git root]."
CONFIG_HELP = (
    "Pre-configured ports [env: PORTALLOC_CONFIG; default: port_config.json or misc/port_config.json "
    "beside the ledger]."
)
LOCK_TIMEOUT_HELP = "Seconds to wait for the ledger lock [env: PORTALLOC_LOCK_TIMEOUT]."
PROBE_HELP = (
    "Let new allocations skip ports this machine holds, and warn when an allocation's port is held "
    "[env: PORTALLOC_PROBE=0 to turn off]."
)
LEASES_HELP = (
    "Keep this machine's host leases, so that no port is handed out twice across checkouts "
    "[env: PORTALLOC_LEASES=0 to turn off]."
)
ALLOW_CONFUSABLE_HELP = (
    "Let a new model name look the same as an existing one (model_а with a Cyrillic а beside model_a); "
    "by default it is refused."
)

#: The root group's options as click lists them (``Option.get_help_record``: the option's
#: spellings, and its help with what click adds after it), in the order of their definition.
OPTION_ROWS = (
    ("-V, --version", "Show the version and exit."),
    ("--ledger PATH", LEDGER_HELP),
    ("--config PATH", CONFIG_HELP),
    ("--lock-timeout SECONDS", f"{LOCK_TIMEOUT_HELP}  [default: {DEFAULT_LOCK_TIMEOUT}; x>=0]"),
    ("--probe / --no-probe", f"{PROBE_HELP}  [default: probe]"),
    ("--leases / --no-leases", f"{LEASES_HELP}  [default: leases]"),
    ("--allow-confusable", ALLOW_CONFUSABLE_HELP),
    ("-h, --help", "Show this message and exit."),
)

USAGE_ARGS = "[OPTIONS] COMMAND [ARGS]..."


def terminal_width() -> int:
    """The width click's help takes: the terminal's columns (as ``shutil.get_terminal_size``), at most 80, less 2.

    ``shutil`` imports ``bz2`` and ``lzma``; its reading of the columns is a few lines.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no stdout (None), closed, or not a terminal
            columns = 80
    return max(min(columns, 80) - 2, 50)


def render(width: int) -> str:
    """The root help at ``width`` (``terminal_width()``), as ``cli.get_help(ctx)`` gives it (no final newline)."""
    layout = _Layout(width)
    layout.usage("portalloc", USAGE_ARGS)
    layout.paragraph()
    layout.indent += 2
    layout.text(ROOT_HELP)
    layout.indent -= 2
    for title, rows in (("Options", OPTION_ROWS), *command_sections()):
        layout.section(title, rows)
    return "".join(layout.buffer).rstrip("\n")


def command_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The commands by section, each with its summary, as the click group lists them (``_Group.format_commands``)."""
    listed: set[str] = set()
    sections = []
    for title, names in (*COMMAND_SECTIONS, ("Other commands", tuple(sorted(COMMANDS)))):
        rows = [(name, COMMANDS[name].summary) for name in names if name in COMMANDS and name not in listed]
        listed.update(name for name, _ in rows)
        if rows:
            sections.append((title, rows))
    return sections


class _Wrapper(textwrap.TextWrapper):
    """click's ``TextWrapper`` for text without ANSI codes: a word longer than the line is cut where the line ends."""

    def _handle_long_word(self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int) -> None:
        space_left = max(width - cur_len, 1)
        if self.break_long_words:
            last = reversed_chunks[-1]
            cur_line.append(last[:space_left])
            reversed_chunks[-1] = last[space_left:]
        elif not cur_line:
            cur_line.append(reversed_chunks.pop())


def _wrap(text: str, width: int, initial: str = "", subsequent: str = "", paragraphs: bool = False) -> str:
    """click's ``wrap_text``: paragraphs split at blank lines, each keeps its indent, one after ``\\b`` unwrapped."""
    text = text.expandtabs()
    wrapper = _Wrapper(width, initial_indent=initial, subsequent_indent=subsequent, replace_whitespace=False)
    if not paragraphs:
        return wrapper.fill(text)
    found: list[tuple[int, bool, str]] = []
    lines: list[str] = []
    indent: int | None = None
    for line in [*text.splitlines(), ""]:  # the blank line at the end closes the last paragraph
        if line:
            if indent is None:
                indent = len(line) - len(line.lstrip())
                line = line.lstrip()
            lines.append(line)
            continue
        if lines:
            raw = lines[0].strip() == "\b"
            found.append((indent or 0, raw, "\n".join(lines[1:]) if raw else " ".join(lines)))
            lines = []
        indent = None
    out = []
    for extra, raw, paragraph in found:
        wrapper.initial_indent, wrapper.subsequent_indent = initial + " " * extra, subsequent + " " * extra
        if raw:
            out.append(
                "\n".join(
                    (wrapper.subsequent_indent if number else wrapper.initial_indent) + line
                    for number, line in enumerate(paragraph.splitlines())
                )
            )
        else:
            out.append(wrapper.fill(paragraph))
    return "\n\n".join(out)


class _Layout:
    """click's ``HelpFormatter``, the parts the root help uses: a buffer, an indent, and ``width``.

    A section is one call rather than click's context manager: ``contextlib`` is not needed otherwise.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.indent = 0
        self.buffer: list[str] = []

    def usage(self, prog: str, args: str) -> None:
        # click puts the arguments on a line of their own when fewer than 20 columns are left
        # beside the prefix; at click's narrowest width (50) "Usage: portalloc " leaves 33.
        prefix = f"Usage: {prog} "
        self.buffer += [_wrap(args, self.width, prefix, " " * len(prefix)), "\n"]

    def paragraph(self) -> None:
        if self.buffer:
            self.buffer.append("\n")

    def text(self, text: str) -> None:
        indent = " " * self.indent
        self.buffer += [_wrap(text, self.width, indent, indent, paragraphs=True), "\n"]

    def definitions(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        first_col = min(max(len(first) for first, _ in rows), col_max) + col_spacing
        for first, second in rows:
            self.buffer.append(f"{'':>{self.indent}}{first}")
            if not second:
                self.buffer.append("\n")
                continue
            if len(first) <= first_col - col_spacing:
                self.buffer.append(" " * (first_col - len(first)))
            else:
                self.buffer += ["\n", " " * (first_col + self.indent)]
            lines = _wrap(second, max(self.width - first_col - 2, 10), paragraphs=True).splitlines()
            if not lines:
                self.buffer.append("\n")
                continue
            self.buffer.append(f"{lines[0]}\n")
            self.buffer += [f"{'':>{first_col + self.indent}}{line}\n" for line in lines[1:]]

    def section(self, name: str, rows: Sequence[tuple[str, str]]) -> None:
        self.paragraph()
        self.buffer.append(f"{'':>{self.indent}}{name}:\n")
        self.indent += 2
        self.definitions(rows)
        self.indent -= 2
