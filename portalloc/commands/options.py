"""What every command shares: the global settings, the key arguments and JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from portalloc.errors import InvalidKey
from portalloc.keys import check_app_num, check_model_name
from portalloc.limits import MAX_APP_NUM

if TYPE_CHECKING:
    from portalloc.service import PortAllocationService

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Settings:
    """The global options, resolved: which ledger, which pre-configuration, how long to wait for the lock."""

    ledger_path: Path
    config_path: Path | None
    lock_timeout: float

    def service(self) -> PortAllocationService:
        """A service over this ledger (imports pydantic and filelock on first use)."""
        from portalloc.service import PortAllocationService

        return PortAllocationService(self.ledger_path, self.config_path, lock_timeout=self.lock_timeout)


pass_settings = click.make_pass_decorator(Settings)


class _ModelName(click.ParamType):  # type: ignore[type-arg]
    name = "model"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_model_name(value)
        except InvalidKey as error:
            self.fail(str(error), param, ctx)


class _AppNum(click.ParamType):  # type: ignore[type-arg]
    name = "app_num"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return check_app_num(value if isinstance(value, int) else int(str(value), 10))
        except (ValueError, InvalidKey):
            self.fail(f"app_num must be a whole number from 1 to {MAX_APP_NUM:,}, not {value!r}", param, ctx)


MODEL = _ModelName()
APP_NUM = _AppNum()


def key_arguments(function: F) -> F:
    """``MODEL APP_NUM``, validated the way the ledger validates keys."""
    function = click.argument("app_num", type=APP_NUM, metavar="APP_NUM")(function)
    return click.argument("model", type=MODEL, metavar="MODEL")(function)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def pair_json(model: str, app_num: int, backend: int, frontend: int) -> dict[str, Any]:
    """The JSON object that names one allocation (``get --json``, ``list --json``)."""
    return {"model": model, "app_num": app_num, "backend": backend, "frontend": frontend}


def echo_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))
