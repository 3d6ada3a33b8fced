"""A click group whose commands are known by name and imported when used (click's documented lazy-loading pattern).

``portalloc get`` runs in a fresh interpreter on every call, so what it imports is most
of what it costs. Through ``list_commands``/``get_command`` a group names every command
but imports the module of the one that runs (``portalloc --help``, which lists them all,
still imports each).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """A ``click.Group`` with ``lazy_commands``: ``name -> "module:attribute"``, each imported on first use.

    Commands added the usual way (``group.add_command``) are listed and found as well.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, sorted: the lazy ones and any added the usual way."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named ``cmd_name``, its module imported now if it was not yet; ``None`` if there is none."""
        path = self.lazy_commands.get(cmd_name)
        if path is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = path.partition(":")
        # __import__, not importlib.import_module: only the former shows in `python -X importtime`.
        command: click.Command = getattr(__import__(module, fromlist=[attribute]), attribute)
        self.add_command(command, cmd_name)  # found in self.commands from now on
        return command
