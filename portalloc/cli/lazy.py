"""The command table of ``portalloc``: every command is known by name, and imported when used.

``portalloc get`` runs in a fresh interpreter on every call, so what it imports is most
of what it costs. With this table it imports click and the modules of ``get`` alone,
not the other commands' modules (``portalloc --help``, which lists them all, still
imports each).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping

import click


class LazyCommands(MutableMapping[str, click.Command]):
    """A click group's ``commands``: ``name -> "module:attribute"``, each imported on first access.

    Commands added the usual way (``group.add_command``) are kept as they are.
    """

    def __init__(self, paths: Mapping[str, str]) -> None:
        self._paths = dict(paths)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        command = self._loaded.get(name)
        if command is None:
            module, _, attribute = self._paths[name].partition(":")
            # __import__, not importlib.import_module: only the former shows in `python -X importtime`.
            command = self._loaded[name] = getattr(__import__(module, fromlist=[attribute]), attribute)
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._paths.pop(name, None)
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._paths or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._paths, *self._loaded}))

    def __len__(self) -> int:
        return len({*self._paths, *self._loaded})
