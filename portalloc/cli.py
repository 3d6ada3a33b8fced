"""The ``portalloc`` command: global options, error reporting, and the commands wired together.

Every failure ends as one ``Error: …`` line on stderr and a non-zero exit: 2 for a
usage error (click's convention), 1 for anything else. No traceback reaches the user.
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from portalloc import __version__
from portalloc.commands.check import check
from portalloc.commands.cleanup import cleanup
from portalloc.commands.get import get
from portalloc.commands.list import list_allocations
from portalloc.commands.options import Settings
from portalloc.commands.release import release
from portalloc.commands.stats import stats
from portalloc.errors import PortallocError
from portalloc.paths import find_config, find_ledger


class _Group(click.Group):
    """A click group that reports every error as a single ``Error:`` line."""

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
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
            _fail(f"{error.format_message()}{hint}", error.exit_code)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except PortallocError as error:
            _fail(str(error), error.exit_code)
        except OSError as error:
            if error.errno == errno.EPIPE:  # stdout closed early, e.g. `portalloc list | head -1`
                sys.exit(1)
            _fail(f"{error.strerror or error}: {error.filename}" if error.filename else str(error), 1)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class _WarningHandler(logging.Handler):
    """Shows the service's warnings as ``Warning: …`` lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"Warning: {record.getMessage()}", err=True)


def _show_warnings() -> None:
    logger = logging.getLogger("portalloc")
    if not any(isinstance(handler, _WarningHandler) for handler in logger.handlers):
        logger.addHandler(_WarningHandler())
        logger.setLevel(logging.WARNING)
        logger.propagate = False


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portalloc")
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PORTALLOC_LEDGER",
    help="Ledger file [env: PORTALLOC_LEDGER; default: the nearest portalloc.json up to the git root].",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PORTALLOC_CONFIG",
    help="Pre-configured ports [env: PORTALLOC_CONFIG; default: port_config.json or misc/port_config.json "
    "beside the ledger].",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    envvar="PORTALLOC_LOCK_TIMEOUT",
    default=10.0,
    show_default=True,
    help="Seconds to wait for the ledger lock [env: PORTALLOC_LOCK_TIMEOUT].",
)
@click.pass_context
def cli(ctx: click.Context, ledger: Path | None, config: Path | None, lock_timeout: float) -> None:
    """Give every (model, app) its own backend/frontend port pair, kept in a JSON ledger."""
    _show_warnings()
    ledger_path = ledger if ledger is not None else find_ledger(Path.cwd())
    config_path = config if config is not None else find_config(ledger_path)
    ctx.obj = Settings(ledger_path, config_path, lock_timeout)


for _command in (get, list_allocations, check, stats, release, cleanup):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="portalloc")
