"""The command line's own parameter types and shared options: keys, port ranges, output files, ``--json``.

Each checks its value while click parses the arguments, so a bad one is a usage error
(exit 2) before anything is read or written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from portalloc.cli.context import Settings
from portalloc.core.keys import check_app_num, check_model_name, parse_app_num
from portalloc.core.limits import MAX_PORT, MIN_PORT, whole_number
from portalloc.errors import InvalidKey

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

F = TypeVar("F", bound=Callable[..., Any])

#: Passes the root group's ``Settings`` to a command.
pass_settings = click.make_pass_decorator(Settings)


class OutputFile(click.Path):
    """A file a command writes (``export -o``, ``dotenv PATH``, ``history --png``): never the ledger or its lock.

    Writing an export, a ``.env`` block or a PNG over the ledger would lose every
    allocation in it, and replacing the lock file would let a second writer take "the"
    lock while the first holds the old one. Checked while the arguments are parsed,
    before anything is allocated; a hard link to the ledger counts as the ledger.
    """

    def __init__(self) -> None:
        super().__init__(path_type=Path, dir_okay=False, readable=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path, refused (a usage error) if it names the ledger of ``--ledger`` or its lock file."""
        path = cast(Path, super().convert(value, param, ctx))  # path_type=Path
        settings = ctx.find_object(Settings) if ctx is not None else None
        if settings is not None:
            from portalloc.storage.locking import lock_path

            ledger = os.path.realpath(settings.ledger_path)
            for protected, what in ((ledger, "the ledger"), (str(lock_path(ledger)), "the ledger's lock file")):
                if _same_file(path, protected):
                    self.fail(f"{value} is {what} ({protected}); write somewhere else", param, ctx)
        return path


#: ``--follow-symlinks`` for every command with an ``OutputFile``: by default a link there is refused
#: (``portalloc.storage.files.output_target``).
follow_symlinks_option = click.option(
    "--follow-symlinks",
    is_flag=True,
    help="If the output file is a symbolic link, write the existing file it points to (by default a link is refused).",
)


def _same_file(path: Path, other: str) -> bool:
    """Whether ``path`` names ``other``: the same resolved path, or the same inode (a hard link)."""
    if os.path.realpath(path) == other:
        return True
    try:
        return os.path.samefile(path, other)
    except OSError:  # either does not exist (yet): they cannot be one file
        return False


class _ModelName(click.ParamType):  # type: ignore[type-arg]
    name = "model"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_model_name(value)
        except InvalidKey as error:
            self.fail(str(error), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        """The ledger's model names (read lock-free; nothing is allocated)."""
        from click.shell_completion import CompletionItem

        from portalloc.cli.completion import complete_models

        return [CompletionItem(model) for model in complete_models(ctx, incomplete)]


class _AppNum(click.ParamType):  # type: ignore[type-arg]
    name = "app_num"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return check_app_num(value) if isinstance(value, int) else parse_app_num(str(value))
        except InvalidKey as error:
            self.fail(str(error), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        """The ledger's app numbers of the model given before (read lock-free; nothing is allocated)."""
        from click.shell_completion import CompletionItem

        from portalloc.cli.completion import complete_app_nums

        return [CompletionItem(number) for number in complete_app_nums(ctx, incomplete)]


MODEL = _ModelName()
APP_NUM = _AppNum()


class Span(click.ParamType):  # type: ignore[type-arg]
    """``N`` or ``LOW-HIGH`` (both included), each from ``minimum`` to ``maximum``, as ``(low, high)``."""

    def __init__(self, name: str, minimum: int, maximum: int) -> None:
        self.name, self.minimum, self.maximum = name, minimum, maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        low, dash, high = str(value).partition("-")
        first, last = whole_number(low), whole_number(high if dash else low)
        if first is None or last is None:
            self.fail(f"{value!r} is not a number or a LOW-HIGH range", param, ctx)
        if not self.minimum <= first <= last <= self.maximum:
            self.fail(f"{value!r}: each end goes from {self.minimum} to {self.maximum:,}, low end first", param, ctx)
        return first, last


#: ``6379`` or ``9229-9240``.
PORT_RANGE = Span("PORT|LOW-HIGH", MIN_PORT, MAX_PORT)


def key_arguments(function: F) -> F:
    """``MODEL APP_NUM``, validated the way the ledger validates keys."""
    function = click.argument("app_num", type=APP_NUM, metavar="APP_NUM")(function)
    return click.argument("model", type=MODEL, metavar="MODEL")(function)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def format_option(*choices: str, default: str, help: str, dest: str = "output") -> Callable[[F], F]:
    """``--format`` with ``choices`` (``json`` among them) and ``--json``, its shorthand: the command gets ``dest``.

    One convention for every command whose output has a ``--format``: ``--json`` means
    ``--format json``, and ``--json`` beside another ``--format`` is a usage error
    (exit 2), never a silent pick.
    """

    def settle(ctx: click.Context, param: click.Parameter, as_json: bool) -> bool:
        chosen = ctx.params.get(dest)
        if as_json and chosen is not None and chosen not in ("json", default):
            raise click.UsageError(f"--json and --format {chosen} go against each other", ctx)
        if as_json:
            ctx.params[dest] = "json"
        return as_json

    def decorate(function: F) -> F:
        function = click.option(
            "--json", "as_json", is_flag=True, expose_value=False, callback=settle, help="Short for --format json."
        )(function)
        return click.option(
            "--format",
            dest,
            type=click.Choice(choices),
            default=default,
            show_default=True,
            is_eager=True,  # parsed before --json, whose callback reads it
            help=help,
        )(function)

    return decorate


def batch_arguments(function: F) -> F:
    """``[FILE|-]`` and ``--format``: where a batch of keys comes from and how it is written (``cli/keylist.py``)."""
    function = click.option(
        "--format",
        "fmt",
        type=click.Choice(["auto", "lines", "jsonl", "json"]),
        default="auto",
        show_default=True,
        help="How FILE is written: MODEL APP_NUM lines, JSON lines, a JSON array, or detected.",
    )(function)
    return click.argument("source", metavar="[FILE|-]", default="-")(function)


def prefix_option(function: F) -> F:
    """``--prefix``: put before ``BACKEND_PORT``/``FRONTEND_PORT``, validated as part of a variable name."""

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        from portalloc.errors import InvalidVariableName
        from portalloc.integrations.envvars import check_prefix

        try:
            return check_prefix(value)
        except InvalidVariableName as error:
            raise click.BadParameter(str(error)) from None

    return click.option(
        "--prefix",
        default="",
        metavar="PREFIX",
        callback=check,
        help="Put PREFIX before the variable names (--prefix APP_ gives APP_BACKEND_PORT).",
    )(function)
