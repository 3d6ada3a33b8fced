"""What every command shares: the global settings, the key arguments and JSON output."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from portalloc.core.keys import check_app_num, check_model_name
from portalloc.core.limits import MAX_APP_NUM, MAX_PORT, MIN_PORT, whole_number
from portalloc.errors import InvalidKey

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from portalloc.core.allocator import Conflict
    from portalloc.core.models import Allocation
    from portalloc.service.facade import PortAllocationService

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Settings:
    """The global options, resolved: which ledger, which pre-configuration, how long to wait for the lock.

    ``probe`` is ``False`` under ``--no-probe``: new allocations ignore what the OS holds
    and ``get``/``run`` do not look at the machine. ``create_ledger`` says whether a
    write may create a missing ledger: only at the default discovered location, the
    root of the git repository (``ledger_creatable``); anywhere else a typo in
    ``--ledger`` or ``PORTALLOC_LEDGER`` would silently start a second ledger.
    """

    ledger_path: Path
    config_path: Path | None
    lock_timeout: float
    probe: bool = True
    create_ledger: bool = False
    #: ``--allow-confusable``: a new model may look like an existing one (``portalloc.core.names``).
    allow_confusable: bool = False

    def service(self) -> PortAllocationService:
        """A service over this ledger (imports pydantic on first use).

        Its warnings are shown as ``Warning: …`` lines on stderr from then on.
        """
        from portalloc.service.facade import PortAllocationService

        show_warnings()
        return PortAllocationService(
            self.ledger_path,
            self.config_path,
            lock_timeout=self.lock_timeout,
            probe=self.probe,
            create_ledger=self.create_ledger,
            allow_confusable=self.allow_confusable,
        )


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


def show_warnings() -> None:
    """Show what the ``portalloc`` logger warns about as ``Warning: …`` lines on the current stderr."""
    import logging  # here, not at the top: a lookup never needs it

    class WarningLines(logging.Handler):
        portalloc_cli = True

        def emit(self, record: logging.LogRecord) -> None:
            click.echo(f"Warning: {record.getMessage()}", err=True)

    logger = logging.getLogger("portalloc")
    if not any(getattr(handler, "portalloc_cli", False) for handler in logger.handlers):
        logger.addHandler(WarningLines())
        logger.setLevel(logging.WARNING)
        logger.propagate = False


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
            if isinstance(value, int):
                return check_app_num(value)
            number = whole_number(str(value))
            if number is None:
                raise ValueError(value)
            return check_app_num(number)
        except (ValueError, InvalidKey):
            self.fail(f"app_num must be a whole number from 1 to {MAX_APP_NUM:,}, not {value!r}", param, ctx)

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


def pair_json(model: str, app_num: int, backend: int, frontend: int) -> dict[str, Any]:
    """The JSON object that names one allocation (``get --json``, ``list --json``)."""
    return {"model": model, "app_num": app_num, "backend": backend, "frontend": frontend}


def conflict_json(conflict: Conflict) -> dict[str, Any]:
    """The JSON object of one conflict: ``{"port", "holders": [{"model", "app_num", "role"}…]}`` (role ``null``
    for a key listed twice)."""
    return {
        "port": conflict.port,
        "holders": [{"model": h.model, "app_num": h.app_num, "role": h.role} for h in conflict.holders],
    }


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


def echo_released(released: Sequence[Allocation], as_json: bool) -> None:
    """Print released allocations: ``Released model/N (backend/frontend).`` lines, or a JSON array."""
    if as_json:
        echo_json([pair_json(a.model, a.app_num, a.backend, a.frontend) for a in released])
        return
    for a in released:
        click.echo(f"Released {a.label()} ({a.backend}/{a.frontend}).")


#: A column is at most this many terminal cells wide; a longer cell (a 200-character model
#: name) runs past its column on its own row instead of padding every other row.
MAX_COLUMN_WIDTH = 40


def display_width(text: str) -> int:
    """How many terminal cells ``text`` takes: East Asian wide characters two, combining marks none."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def echo_table(rows: Sequence[Sequence[str]], align: str) -> None:
    """Print ``rows`` (the first is the header) as columns two spaces apart; ``align`` is ``<`` or ``>`` per column.

    Columns are measured in terminal cells (``display_width``), so ``モデル`` lines up with
    ``model``; a column is as wide as its widest cell up to ``MAX_COLUMN_WIDTH``.
    """
    measured = [[display_width(cell) for cell in row] for row in rows]
    widths = [
        max([row[column] for row in measured if row[column] <= MAX_COLUMN_WIDTH] or [0]) for column in range(len(align))
    ]
    for row, cells in zip(rows, measured, strict=True):
        padded = [
            (cell + " " * (width - used)) if side == "<" else (" " * (width - used) + cell)
            for cell, used, side, width in zip(row, cells, align, widths, strict=True)
        ]
        click.echo("  ".join(padded).rstrip())


def echo_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def pair_for(settings: Settings, model: str, app_num: int) -> tuple[int, int]:
    """``(backend, frontend)`` of the key, allocated if new; an existing pair is looked up without pydantic.

    For an existing pair the machine is looked at too (unless ``--no-probe`` or the
    ledger's policy says ``"probe": false``): a port that something else holds now is
    warned about on stderr, and the pair is kept.
    """
    from portalloc.storage.lookup import find_pair

    hit = find_pair(settings.ledger_path, model, app_num)
    if hit is None:
        return settings.service().get_or_allocate_ports(model, app_num).ports
    if settings.probe and hit.probe:
        warn_if_held(model, app_num, hit.backend, hit.frontend)
    return hit.ports


def warn_if_held(model: str, app_num: int, backend: int, frontend: int) -> None:
    """Warn on stderr for each port of an existing allocation that something else holds now.

    The allocation is never moved: a port held by a stranger is the user's call.
    """
    from portalloc.machine.probe import is_free

    if is_free(backend) and is_free(frontend):
        return  # the common case, decided by bind tests alone: nothing more is imported or read
    from portalloc.machine.live import held_warnings

    for warning in held_warnings(model, app_num, backend, frontend):
        click.echo(f"Warning: {warning}", err=True)


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
