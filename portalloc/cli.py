"""The ``portalloc`` command: global options, error reporting, and the commands wired together.

Every failure ends as one ``Error: …`` line on stderr and a non-zero exit: 2 for a
usage error (click's convention), 1 for anything else. No traceback reaches the user.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from portalloc import __version__
from portalloc.commands.lazy import LazyCommands
from portalloc.commands.options import Settings
from portalloc.errors import PortallocError
from portalloc.limits import DEFAULT_LOCK_TIMEOUT
from portalloc.paths import find_config, find_ledger, ledger_creatable


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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portalloc")
@click.option(
    "--ledger",
    type=click.Path(readable=False, path_type=Path),  # checked by the storage layer, one way
    envvar="PORTALLOC_LEDGER",
    help="Ledger file [env: PORTALLOC_LEDGER; default: the nearest portalloc.json up to the git root].",
)
@click.option(
    "--config",
    type=click.Path(readable=False, path_type=Path),  # checked by the storage layer, one way
    envvar="PORTALLOC_CONFIG",
    help="Pre-configured ports [env: PORTALLOC_CONFIG; default: port_config.json or misc/port_config.json "
    "beside the ledger].",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    envvar="PORTALLOC_LOCK_TIMEOUT",
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the ledger lock [env: PORTALLOC_LOCK_TIMEOUT].",
)
@click.option(
    "--probe/--no-probe",
    envvar="PORTALLOC_PROBE",
    default=True,
    show_default=True,
    help="Let new allocations skip ports this machine holds, and warn when an allocation's port is held "
    "[env: PORTALLOC_PROBE=0 to turn off].",
)
@click.pass_context
def cli(ctx: click.Context, ledger: Path | None, config: Path | None, lock_timeout: float, probe: bool) -> None:
    """Give every (model, app) its own backend/frontend port pair, kept in a JSON ledger."""
    # The service's warnings become ``Warning:`` lines: set up by ``Settings.service()``,
    # so a lookup never imports logging.
    ledger_path = ledger if ledger is not None else find_ledger(Path.cwd())
    config_path = config if config is not None else find_config(ledger_path)
    ctx.obj = Settings(ledger_path, config_path, lock_timeout, probe, ledger_creatable(ledger_path, ledger is not None))


#: Every command: its name and where it lives (``module:function``). A command's module is
#: imported only when that command runs or ``--help`` lists it, so ``portalloc get`` pays
#: for itself alone. To add a command, add its line here.
cli.commands = LazyCommands(
    {
        "get": "portalloc.commands.get:get",
        "list": "portalloc.commands.list:list_allocations",
        "check": "portalloc.commands.check:check",
        "stats": "portalloc.commands.stats:stats",
        "release": "portalloc.commands.release:release",
        "cleanup": "portalloc.commands.cleanup:cleanup",
        "merge-driver": "portalloc.commands.merge_driver:merge_driver",
        "git-setup": "portalloc.commands.git_setup:git_setup",
        "repair": "portalloc.commands.repair:repair",
        "fmt": "portalloc.commands.fmt:fmt",
        "env": "portalloc.commands.env:env",
        "run": "portalloc.commands.run:run",
        "dotenv": "portalloc.commands.dotenv:dotenv",
        "status": "portalloc.commands.status:status",
        "compose-check": "portalloc.commands.compose_check:compose_check",
        "init": "portalloc.commands.init:init",
    }
)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="portalloc")
