"""The quick front door: ``portalloc --help`` and ``portalloc get`` of a key the ledger holds, without click.

These are the hottest calls there are (scaffolding asks ``get`` once per app), and
importing click costs as much as port-for's whole call. ``answer`` recognises exactly
these shapes of the command line::

    portalloc | portalloc --help | portalloc -h
    portalloc [--ledger PATH | --ledger=PATH] get MODEL APP_NUM [--json | --field backend|frontend]

(``get``'s options anywhere among its arguments, each at most once) and answers them
where the click command line would print exactly the same bytes on stdout and stderr
and exit with the same status: the root help from ``cli.roothelp``, a held key's pair
from ``cli.knownpair`` printed by ``cli.pairtext``, the very code the click path runs.
Anything else is declined (``None``) and ``cli.main`` answers it, untouched: another
option or token shape, a name or number that click would refuse, a key the ledger does
not hold (a new allocation), an environment variable click would read (other than an
empty one, ``PORTALLOC_LEDGER``, and ``0``/``1`` for ``PORTALLOC_PROBE`` and
``PORTALLOC_LEASES``), shell completion, a pre-configuration warning, a ledger the host
lease store must take in first, text the terminal's encoding cannot show, or any error.
``tests/cli/test_quick.py`` holds the two paths to the same output with generated
command lines.
"""

from __future__ import annotations

import os
import sys

from portalloc import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path
    from typing import NoReturn, TextIO

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
    """The click command line must answer (raised where a decline is found deep in a call)."""


def answer(argv: list[str]) -> int | None:
    """Answer ``portalloc ARGV`` as the click command line would, and return its exit status; ``None``: declined."""
    if COMPLETION_VARIABLE in os.environ:
        return None
    try:
        if argv in _HELP_ARGS:
            from portalloc.cli.roothelp import render, terminal_width

            return _print([], render(terminal_width()))
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
    from portalloc.cli.knownpair import known_pair
    from portalloc.cli.pairtext import get_text
    from portalloc.core.keys import check_model_name, parse_app_num
    from portalloc.errors import InvalidKey, PortallocError

    probe, leases = (_switch(name) for name in SWITCH_VARIABLES)
    if any(os.environ.get(name) for name in DECLINED_VARIABLES):
        return None
    try:
        model, app_num = check_model_name(request.model), parse_app_num(request.app_num)
    except InvalidKey:  # click's usage error says it
        return None
    ledger_path = _ledger_path(request.ledger)
    try:
        known = known_pair(ledger_path, model, app_num, leases=leases, probe=probe, sync=_decline)
    except (OSError, PortallocError):  # the click path reports it, in its words
        return None
    if known is None:  # a new key, or a ledger the fast reader leaves to the models
        return None
    text = get_text(model, app_num, (known.backend, known.frontend, None), as_json=request.as_json, field=request.field)
    return _print([f"Warning: {warning}" for warning in known.warnings], text)


def _switch(name: str) -> bool:
    """``--probe``/``--leases`` as click reads the variable ``name``: on when unset or empty; ``0``/``1``."""
    value = os.environ.get(name)
    if not value:
        return True
    if value not in ("0", "1"):
        raise _Declined
    return value == "1"


def _ledger_path(named: str | None) -> Path:
    """The ledger the root group resolves, where it would say nothing on stderr (else ``_Declined``)."""
    from pathlib import Path

    from portalloc.storage.paths import find_config, find_ledger, ledger_creatable

    named = named or os.environ.get("PORTALLOC_LEDGER") or None
    try:
        path = Path(named) if named is not None else find_ledger(Path.cwd())
        skipped = find_config(path).skipped
        ledger_creatable(path, named is not None)  # may fail (EACCES on a parent): the click path reports it
    except OSError:
        raise _Declined from None
    if skipped:  # the click path warns about a default pre-configuration it passes over
        raise _Declined
    return path


def _decline() -> NoReturn:
    # The ledger changed since the host lease store took it in: the service (pydantic,
    # SQLite) leases its rows, which is the click path's work.
    raise _Declined


def _print(warnings: list[str], text: str) -> int:
    """Write ``warnings`` on stderr and ``text`` on stdout, a line each, as ``click.echo`` would; the exit status."""
    if not (_showable(sys.stderr, "\n".join(warnings)) and _showable(sys.stdout, text)):
        raise _Declined
    try:
        for line in warnings:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError as error:
        import errno

        from portalloc.cli.stdout import SIGPIPE_STATUS, quiet_exit, quiet_stdout, unwritable

        if error.errno == errno.EPIPE:  # stdout's reader, or stderr's, went away: as the click path ends
            quiet_exit(SIGPIPE_STATUS)
        quiet_stdout()
        sys.stderr.write(f"Error: {unwritable(error)}\n")
        return 1
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
