"""A click group whose commands are known by name and imported when used (click's documented lazy-loading pattern).

``portalloc get`` runs in a fresh interpreter on every call, so what it imports is most
of what it costs. Through ``list_commands``/``get_command`` a group names every command
but imports the module of the one that runs; ``portalloc --help`` lists each command by
the summary its table entry carries (``LazyCommand.summary``), so it imports none of
them (``tests/cli/test_cli_imports.py`` holds each summary to its command's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from portalloc.cli.catalog import LazyCommand


class LazyGroup(click.Group):
    """A ``click.Group`` with ``lazy_commands``: ``name -> LazyCommand``, each imported on first use.

    Commands added the usual way (``group.add_command``) are listed and found as well.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, sorted: the lazy ones and any added the usual way."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named ``cmd_name``, its module imported now if it was not yet; ``None`` if there is none."""
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = lazy.path.partition(":")
        # __import__, not importlib.import_module: only the former shows in `python -X importtime`.
        command: click.Command = getattr(__import__(module, fromlist=[attribute]), attribute)
        self.add_command(command, cmd_name)  # found in self.commands from now on
        return command

    def summary(self, ctx: click.Context, cmd_name: str) -> str | None:
        """What ``--help`` lists for ``cmd_name``, without importing it; ``None`` for a hidden or unknown command."""
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is not None and cmd_name not in self.commands:
            return lazy.summary
        command = self.get_command(ctx, cmd_name)
        return None if command is None or command.hidden else command.get_short_help_str(limit=SUMMARY_LIMIT)


#: Long enough that a summary is a whole sentence, never cut.
SUMMARY_LIMIT = 200
