"""portalloc's own completion scripts for bash and fish, registered with click's documented hook.

click's stock scripts lose valid model names: bash hands click the words joined by
spaces and inserts candidates unquoted (``my model`` becomes two words), reads them
without ``read -r`` (``back\\slash`` loses its backslash) and replaces only the part
after the last ``COMP_WORDBREAKS`` character (``llama3:<Tab>`` completes nothing);
fish splits each candidate at every comma (``x,y`` becomes ``x``, a description is cut
at its first comma). Here the script hands portalloc the command line up to the cursor
and the word bash will replace; portalloc splits the line as the shell does
(``split_words``), and for bash quotes each candidate in the style the user began the
word with and trims it to the part bash replaces. zsh's stock script keeps every name
(the suite checks all three shells under tmux). In all three, a value starting with
``-`` completes after an option that takes it (``--model -lead``). ``register`` is called only when a
shell asks for completion, so an ordinary run imports nothing of this.
"""

from __future__ import annotations

import os
import re

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ShellComplete,
    ZshComplete,
    add_completion_class,
)

#: Characters bash reads as themselves outside quotes (anything else is escaped with a backslash).
_BASH_PLAIN = re.compile(r"[\w@%+=:,./-]")
#: bash's default ``COMP_WORDBREAKS``.
_WORDBREAKS = " \t\n\"'><=;|&(:"

_BASH_SOURCE = """\
%(complete_func)s() {
    local line type
    COMPREPLY=()
    # -r keeps backslashes; one candidate a line, "type,value" split at the first comma only.
    while IFS= read -r line; do
        type=${line%%%%,*}
        if [[ $type == dir ]]; then
            compopt -o dirnames
        elif [[ $type == file ]]; then
            compopt -o default
        elif [[ $type == plain ]]; then
            COMPREPLY+=("${line#*,}")
        fi
    done < <(COMP_LINE="${COMP_LINE:0:COMP_POINT}" COMP_WORDBREAKS="$COMP_WORDBREAKS" \\
        %(complete_var)s=bash_complete "$1")
    return 0
}

complete -o nosort -F %(complete_func)s %(prog_name)s
"""

_FISH_SOURCE = """\
function %(complete_func)s
    # string collect: a line that spans several lines stays one argument.
    set -l response (env %(complete_var)s=fish_complete COMP_LINE=(commandline -cp | string collect) %(prog_name)s)
    for completion in $response
        # Split at the first comma only: names and descriptions may hold commas.
        set -l metadata (string split -m 1 "," -- $completion)
        if test $metadata[1] = dir
            __fish_complete_directories $metadata[2]
        else if test $metadata[1] = file
            __fish_complete_path $metadata[2]
        else if test $metadata[1] = plain
            echo $metadata[2]
        end
    end
end

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)"
"""


def split_words(line: str) -> list[tuple[str, str]]:
    """``line`` split as a POSIX shell splits it: ``(value, raw text)`` per word, the last one the word being typed.

    The last word is ``("", "")`` when ``line`` ends in unquoted whitespace. An unfinished
    quote or a trailing backslash is taken as the word so far, as a user is typing it.
    """
    words: list[tuple[str, str]] = []
    value: list[str] = []
    start: int | None = None
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote == "'":  # nothing is special inside single quotes but the closing quote
            if char == "'":
                quote = ""
            else:
                value.append(char)
        elif quote == '"':
            if char == "\\" and index + 1 < len(line) and line[index + 1] in '"\\$`':
                index += 1
                value.append(line[index])
            elif char == '"':
                quote = ""
            else:
                value.append(char)
        elif char in " \t\n":
            if start is not None:
                words.append(("".join(value), line[start:index]))
                value, start = [], None
        else:
            start = index if start is None else start
            if char == "\\":
                index += 1
                value.append(line[index] if index < len(line) else "")
            elif char in "'\"":
                quote = char
            else:
                value.append(char)
        index += 1
    words.append(("".join(value), line[start:] if start is not None else ""))
    return words


def bash_quoted(value: str, begun: str) -> str:
    """``value`` quoted for bash in the style the word was begun with: ``'…'``, ``"…"`` or backslashes."""
    if begun.startswith("'"):
        return "'" + value.replace("'", "'\\''") + "'"
    if begun.startswith('"'):
        return '"' + re.sub(r'([\\"$`])', r"\\\1", value) + '"'
    return "".join(char if _BASH_PLAIN.fullmatch(char) else "\\" + char for char in value)


class _DashValues(ShellComplete):
    """Complete an option's value that starts with ``-`` (``--model -lead``), as click's parser reads it.

    click offers option names for any word starting with ``-``; after an option that
    takes a value, the word is that value (``portalloc list --model -lead`` runs).
    """

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        name, equals, value = incomplete.partition("=")
        before = [*args, name] if equals else args
        if incomplete.startswith("-") and "--" not in args and _takes_a_value(self.cli, before):
            typed = value if equals else incomplete
            # Asked with an empty word, click completes the option's value; the prefix is ours to apply.
            return [item for item in super().get_completions(before, "") if item.value.startswith(typed)]
        return super().get_completions(args, incomplete)


def _takes_a_value(cli: click.Command, args: list[str]) -> bool:
    """Whether the last of ``args`` is an option of ``cli`` or of the command named in ``args`` that takes a value."""
    if not args:
        return False
    commands = [cli]
    if isinstance(cli, click.Group):
        ctx = click.Context(cli)
        named = next((arg for arg in args if arg in cli.list_commands(ctx)), None)
        command = cli.get_command(ctx, named) if named is not None else None
        commands += [command] if command is not None else []
    return any(
        isinstance(param, click.Option) and not param.is_flag and not param.count and args[-1] in param.opts
        for command in commands
        for param in command.params
    )


class _LineArgs(_DashValues):
    """The arguments and the word being typed, from ``COMP_LINE`` (the line up to the cursor)."""

    raw = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        words = split_words(os.environ.get("COMP_LINE", ""))
        self.raw = words[-1][1]
        return [value for value, _ in words[1:-1]], words[-1][0]


class BashCompletion(_LineArgs, BashComplete):
    """bash: candidates quoted, and trimmed to the part of the word readline replaces."""

    source_template = _BASH_SOURCE

    def format_completion(self, item: CompletionItem) -> str:
        if item.type != "plain":
            return f"{item.type},{item.value}"
        raw = self.raw
        if raw.startswith("-") and "=" in raw:
            raw = raw.partition("=")[2]  # --model=VALUE: click completes the value
        quoted = bash_quoted(item.value, raw)
        already = raw[: replaced_from(raw, os.environ.get("COMP_WORDBREAKS", _WORDBREAKS))]
        return f"plain,{quoted[len(already) :] if quoted.startswith(already) else quoted}"


def replaced_from(raw: str, breaks: str) -> int:
    """Where in the word ``raw`` readline's replacement starts: after its last unquoted word-break
    character (``:`` in ``llama3:``), or after the quote a still-open quoted part began with."""
    start, quote, index, opened = 0, "", 0, 0
    while index < len(raw):
        char = raw[index]
        if quote:
            quote = "" if char == quote else quote
        elif char == "\\":
            index += 1
        elif char in "'\"":
            quote, opened = char, index + 1
        elif char in breaks:
            start = index + 1
        index += 1
    return opened if quote else start


class FishCompletion(_LineArgs, FishComplete):
    """fish: the line split as typed; candidates go back unquoted (fish escapes what it inserts)."""

    source_template = _FISH_SOURCE


class ZshCompletion(_DashValues, ZshComplete):
    """zsh: click's script, which keeps every name whole; values starting with ``-`` completed."""


def register() -> None:
    """Put these in place of click's completion classes (``click.shell_completion.add_completion_class``)."""
    add_completion_class(BashCompletion)
    add_completion_class(ZshCompletion)
    add_completion_class(FishCompletion)
