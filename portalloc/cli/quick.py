"""The quick front door: ``portalloc --help`` and ``portalloc get``, without click.

These are the hottest calls there are (scaffolding asks ``get`` once per app), and
importing click costs as much as port-for's whole call. ``answer`` recognises exactly
these shapes of the command line::

    portalloc | portalloc --help | portalloc -h
    portalloc [--ledger PATH | --ledger=PATH] get MODEL APP_NUM [--json | --field backend|frontend]

(``get``'s options anywhere among its arguments, each at most once) and answers them
as the click command line would, the same bytes on stdout and stderr and the same exit
status: the root help from ``cli.roothelp``; ``get`` by the very code the ``get``
command runs (``cli.context.Settings``, resolved as the root group resolves it, whose
``pair_for`` looks a held key up or allocates a new one, printed by ``cli.pairtext``),
its errors as the same ``Error:`` line. The quick door writes those bytes itself where
the terminal's encoding spells them as click would, else through ``click.echo``.
Anything else is declined (``None``), before anything is said, and ``cli.main``
answers it, untouched: another option or token shape, a name or number that click
would refuse (its usage error), an environment variable click would read (other than
an empty one, ``PORTALLOC_LEDGER``, and ``0``/``1`` for ``PORTALLOC_PROBE`` and
``PORTALLOC_LEASES``), or shell completion. ``tests/cli/test_quick.py`` holds the two
paths to the same output and the same ledger with generated command lines.
"""

from __future__ import annotations

import os
import sys

from portalloc import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TextIO

#: What click reads from the environment for ``portalloc get``, besides ``PORTALLOC_LEDGER``:
#: the quick door answers only while these are unset or empty (click ignores an empty one).
DECLINED_VARIABLES = ("PORTALLOC_CONFIG", "PORTALLOC_LOCK_TIMEOUT")
#: The two switches whose reading by click the quick door repeats, for the two plainest values.
SWITCH_VARIABLES = ("PORTALLOC_PROBE", "PORTALLOC_LEASES")
#: ``_PORTALLOC_COMPLETE``: a shell asking for completion, which only click answers.
COMPLETION_VARIABLE = "_PORTALLOC_COMPLETE"
_HELP_ARGS: tuple[list[str], ...] = ([], ["--help"], ["-h"])


class GetRequest:
    """``portalloc get`` as typed: the ledger named (``None``: not named), the key as typed, and how to print.

    Nothing here imports ``typing`` or ``pathlib`` at run time: ``portalloc --help`` uses neither.
    """

    __slots__ = ("app_num", "as_json", "field", "ledger", "model")

    def __init__(self, ledger: str | None, model: str, app_num: str, as_json: bool, field: str | None) -> None:
        self.ledger, self.model, self.app_num, self.as_json, self.field = ledger, model, app_num, as_json, field


class _Declined(Exception):
    """The click command line must answer (``_switch`` finds it inside an expression)."""


def answer(argv: list[str]) -> int | None:
    """Answer ``portalloc ARGV`` as the click command line would, and return its exit status; ``None``: declined."""
    if COMPLETION_VARIABLE in os.environ:
        return None
    try:
        if argv in _HELP_ARGS:
            from portalloc.cli.roothelp import render, terminal_width

            return _print(render(terminal_width()))
        request = parse_get(argv)
        return None if request is None else _answer_get(request)
    except _Declined:
        return None


def parse_get(argv: list[str]) -> GetRequest | None:
    """``argv`` as a ``get`` the quick door may answer, or ``None``."""
    ledger: str | None = None
    at = 0
    while at < len(argv) and argv[at] != "get":
        token = argv[at]
        if token == "--ledger" and at + 1 < len(argv):
            value, at = argv[at + 1], at + 2
        elif token.startswith("--ledger="):
            value, at = token[len("--ledger=") :], at + 1
        else:
            return None
        if ledger is not None or not value or value.startswith("-"):
            return None  # given twice, empty, or a value click might read differently: click decides
        ledger = value
    found = _get_arguments(argv[at + 1 :]) if at < len(argv) else None
    if found is None:
        return None
    (model, app_num), as_json, field = found
    return GetRequest(ledger, model, app_num, as_json, field)


def _get_arguments(args: list[str]) -> tuple[tuple[str, str], bool, str | None] | None:
    """``get``'s arguments (the two positionals, ``--json``, ``--field``), each at most once; ``None`` otherwise."""
    positionals: list[str] = []
    as_json = False
    field: str | None = None
    at = 0
    while at < len(args):
        token = args[at]
        if token == "--json" and not as_json:
            as_json = True
        elif token == "--field" and field is None and at + 1 < len(args):
            at += 1
            field = args[at]
        elif token.startswith("--field=") and field is None:
            field = token[len("--field=") :]
        elif token.startswith("-"):
            return None
        else:
            positionals.append(token)
        at += 1
    if len(positionals) != 2 or field not in (None, "backend", "frontend") or (as_json and field is not None):
        return None
    return (positionals[0], positionals[1]), as_json, field


def _answer_get(request: GetRequest) -> int | None:
    from portalloc.cli.context import Settings
    from portalloc.cli.pairtext import get_text
    from portalloc.core.keys import check_model_name, parse_app_num
    from portalloc.core.limits import DEFAULT_LOCK_TIMEOUT
    from portalloc.errors import InvalidKey, PortallocError

    probe, leases = (_switch(name) for name in SWITCH_VARIABLES)
    if any(os.environ.get(name) for name in DECLINED_VARIABLES):
        return None
    try:
        model, app_num = check_model_name(request.model), parse_app_num(request.app_num)
    except InvalidKey:  # click's usage error says it
        return None
    # From here on the quick door answers: what the click path would do next is exactly this.
    from pathlib import Path

    named = request.ledger or os.environ.get("PORTALLOC_LEDGER") or None
    try:
        settings = Settings.resolve(
            None if named is None else Path(named),
            None,
            _say,
            lock_timeout=DEFAULT_LOCK_TIMEOUT,
            probe=probe,
            leases=leases,
        )
        used = settings.pair_for(model, app_num, say_worktree=request.field is not None)
    except (PortallocError, OSError, UnicodeEncodeError) as error:  # as the click path ends on them
        from portalloc.cli.stdout import ending

        return _fail(*ending(error))
    return _print(get_text(model, app_num, used, as_json=request.as_json, field=request.field))


def _switch(name: str) -> bool:
    """``--probe``/``--leases`` as click reads the variable ``name``: on when unset or empty; ``0``/``1``."""
    value = os.environ.get(name)
    if not value:
        return True
    if value not in ("0", "1"):
        raise _Declined
    return value == "1"


def _say(line: str) -> None:
    """``line`` on stderr, as ``click.echo(line, err=True)`` writes it (``Settings.say``)."""
    _echo(line, err=True)


def _fail(message: str, status: int) -> int:
    """The ``Error:`` line the click path ends with, and its exit status."""
    _say(f"Error: {message}")
    return status


def _echo(text: str, *, err: bool = False) -> None:
    """``text`` and a newline on stdout (stderr: ``err``), the bytes ``click.echo`` writes.

    Written directly where they are the stream's own (``_showable``), else by ``click.echo``
    itself: click is imported only for a terminal whose encoding it handles its own way.
    """
    stream = sys.stderr if err else sys.stdout
    if _showable(stream, text):
        stream.write(text + "\n")
        stream.flush()
        return
    import click

    if err:
        click.echo(text, err=True)
        return
    from portalloc.cli.stdout import guarded_stdout

    with guarded_stdout():  # the stream the click path writes through (no byte-order mark at a file's start)
        click.echo(text)


def _print(text: str) -> int:
    """Write ``text`` on stdout as the click command line does, and end as it ends; the exit status."""
    if sys.stdout is None:  # ``>&-``
        from portalloc.cli.stdout import STDOUT_CLOSED

        return _fail(STDOUT_CLOSED, 1)
    try:
        _echo(text)
    except (OSError, UnicodeEncodeError) as error:  # standard output's own failure, as the click path ends on it
        from portalloc.cli.stdout import ending

        return _fail(*ending(error, on_stdout=True))
    return 0


def _showable(stream: TextIO | None, text: str) -> bool:
    """Whether ``click.echo`` would write ``text`` to ``stream`` byte for byte as ``stream.write`` does.

    It does where the stream's encoding takes the text as it is (click rewraps only an
    ASCII stream, as UTF-8, which spells ASCII text the same) and writes no byte-order
    mark (click's guarded stdout is a second wrapper, which would write another). Not for
    a text with an escape character: off a terminal click strips ANSI codes.
    """
    if stream is None or "\x1b" in text:
        return False
    try:
        text.encode(stream.encoding)
        return "\n".encode(stream.encoding) == b"\n"
    except (AttributeError, TypeError, LookupError, UnicodeEncodeError):
        return False
