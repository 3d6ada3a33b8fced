"""The ``portalloc`` command: global options, error reporting, and the commands wired together.

Every failure ends as one ``Error: …`` line on stderr and a non-zero exit: 2 for a
usage error (click's convention), 1 for anything else. No traceback reaches the user.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from portalloc import __version__
from portalloc.cli.catalog import COMMAND_SECTIONS, COMMANDS
from portalloc.cli.context import Settings, click_say
from portalloc.cli.lazy import LazyGroup
from portalloc.cli.roothelp import (
    ALLOW_CONFUSABLE_HELP,
    CONFIG_HELP,
    LEASES_HELP,
    LEDGER_HELP,
    LOCK_TIMEOUT_HELP,
    PROBE_HELP,
    ROOT_HELP,
)
from portalloc.cli.stdout import SIGPIPE_STATUS, STDOUT_CLOSED, ending, guarded_stdout, interrupted, quiet_exit
from portalloc.core.keys import bad_app_num
from portalloc.core.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.errors import PortallocError


class _ReaderGone(Exception):
    """Standard output's reader went away (EPIPE), e.g. ``portalloc list | head -1``."""


class _Group(LazyGroup):
    """A click group that reports every error as a single ``Error:`` line."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; EPIPE leaves as ``_ReaderGone``, past click's own handler (which exits 1)."""
        try:
            return super().invoke(ctx)
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise _ReaderGone from None
            raise

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        with guarded_stdout():  # tells a failing stdout from a failing ledger (StdoutFailed)
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                if sys.stdout is None:  # ``>&-``: click.echo wrote nothing, and said nothing of it
                    _fail(STDOUT_CLOSED, 1)
                sys.stdout.flush()  # a full disk or a closed pipe must be reported here, not at interpreter exit
            except _ReaderGone:
                quiet_exit(SIGPIPE_STATUS)
            except click.NoSuchOption as error:
                _fail(_unknown_option(error, sys.argv[1:] if args is None else list(args)), error.exit_code)
            except click.UsageError as error:
                _fail(f"{error.format_message()}{_help_hint(error)}", error.exit_code)
            except click.ClickException as error:
                _fail(error.format_message(), error.exit_code)
            except click.Abort as error:
                if isinstance(error.__cause__, KeyboardInterrupt):
                    interrupted()
                _fail("aborted", 1)
            except KeyboardInterrupt:
                interrupted()
            except (PortallocError, OSError, UnicodeEncodeError) as error:  # EPIPE too: met by the final flush
                _fail(*ending(error))
        sys.exit(code if isinstance(code, int) else 0)

    # --- Help: the commands by job, each summary whole, and bare `portalloc` asking for help. ---

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Bare ``portalloc`` prints the help and exits 0: asking for nothing is not an error.

        The help and the version are printed while the arguments are parsed: EPIPE there
        leaves as ``_ReaderGone`` too (141, as for every command's output; click would exit 1).
        """
        try:
            if not args and not ctx.resilient_parsing:  # completing the first word parses no args too
                click.echo(ctx.get_help())
                ctx.exit(0)
            return super().parse_args(ctx, args)
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise _ReaderGone from None
            raise

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, with the note on global options as its help's epilog (one place for every command)."""
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.epilog is None:
            command.epilog = GLOBAL_OPTIONS_NOTE
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands in sections by job (``COMMAND_SECTIONS``), each with its whole first sentence."""
        listed: set[str] = set()
        for title, names in (*COMMAND_SECTIONS, ("Other commands", sorted(self.list_commands(ctx)))):
            rows = []
            for name in names:
                summary = self.summary(ctx, name) if name not in listed else None
                if summary is None:
                    continue
                listed.add(name)
                rows.append((name, summary))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _help_hint(error: click.UsageError) -> str:
    return f" (see '{error.ctx.command_path} --help')" if error.ctx else ""


def _unknown_option(error: click.NoSuchOption, args: Sequence[str]) -> str:
    """The message for an unknown option; ``get m -1`` is a negative app number, not an option."""
    command = error.ctx.command if error.ctx else None
    takes_app_num = command is not None and any(param.name == "app_num" for param in command.params)
    typed = next((arg for arg in args if arg.startswith(error.option_name)), error.option_name)
    if takes_app_num and re.fullmatch(r"-[0-9][0-9_.eE+-]*", typed):
        return f"{bad_app_num(typed)}{_help_hint(error)}"
    ctx, name = error.ctx, error.option_name
    if ctx is not None and ctx.parent is not None and name in _option_names(ctx.find_root().command):
        # ``portalloc get m 1 --ledger x``: the option exists, in the wrong place.
        where = f"portalloc {name} … {ctx.info_name} …"
        return f"{name} is a global option: it goes before the command ({where}) (see 'portalloc --help')"
    return f"{error.format_message()}{_help_hint(error)}"


def _option_names(command: click.Command) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


#: Printed under every command's help: click reads global options only before the command.
GLOBAL_OPTIONS_NOTE = (
    "Global options (--ledger, --config, --lock-timeout, --no-probe) go before the command, "
    "e.g. portalloc --ledger ./portalloc.json get model_a 1."
)


@click.group(
    cls=_Group, lazy_commands=COMMANDS, help=ROOT_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, "-V", "--version", prog_name="portalloc")
@click.option(
    "--ledger",
    type=click.Path(readable=False, path_type=Path),  # checked by the storage layer, one way
    envvar="PORTALLOC_LEDGER",
    help=LEDGER_HELP,
)
@click.option(
    "--config",
    type=click.Path(readable=False, path_type=Path),  # checked by the storage layer, one way
    envvar="PORTALLOC_CONFIG",
    help=CONFIG_HELP,
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    envvar="PORTALLOC_LOCK_TIMEOUT",
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    help=LOCK_TIMEOUT_HELP,
)
@click.option(
    "--probe/--no-probe",
    envvar="PORTALLOC_PROBE",
    default=True,
    show_default=True,
    help=PROBE_HELP,
)
@click.option(
    "--leases/--no-leases",
    envvar="PORTALLOC_LEASES",
    default=True,
    show_default=True,
    help=LEASES_HELP,
)
@click.option(
    "--allow-confusable",
    is_flag=True,
    help=ALLOW_CONFUSABLE_HELP,
)
@click.pass_context
def cli(
    ctx: click.Context,
    ledger: Path | None,
    config: Path | None,
    lock_timeout: float,
    probe: bool,
    leases: bool,
    allow_confusable: bool,
) -> None:
    """The root group: the global options resolved into ``Settings`` (its help is ``roothelp.ROOT_HELP``)."""
    # The service's warnings become ``Warning:`` lines: set up by ``Settings.service()``,
    # so a lookup never imports logging.
    ctx.obj = Settings.resolve(
        ledger,
        config,
        click_say,
        lock_timeout=lock_timeout,
        probe=probe,
        leases=leases,
        allow_confusable=allow_confusable,
    )


def main() -> None:
    """Console-script entry point."""
    if "_PORTALLOC_COMPLETE" in os.environ:  # a shell asking for completion: our scripts, not click's stock ones
        from portalloc.cli.shells import register

        register()
    try:
        cli.main(prog_name="portalloc")
    except KeyboardInterrupt:  # between click's handlers, e.g. while an error line is printed
        interrupted()
