"""Pre-configured ports: the platform's ``port_config.json``.

The file is a JSON list of ``{"model", "app_number", "backend_port", "frontend_port"}``
objects (other fields are ignored). A pre-configured pair wins for its key when both
ports are free; until its key is allocated, no other key is given those ports.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from portalloc.core.keys import Key
from portalloc.core.limits import MAX_CONFIG_BYTES
from portalloc.core.models import AppNum, ModelName, Port
from portalloc.core.validation import describe_validation_error
from portalloc.errors import ConfigError
from portalloc.storage.files import read_regular_file
from portalloc.storage.strictjson import parse_json


class PreconfiguredPorts(BaseModel):
    """One entry of ``port_config.json``."""

    # Its validator is built when a file is first read: most ledgers have no pre-configuration.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", defer_build=True)

    model: ModelName
    app_number: AppNum
    backend_port: Port
    frontend_port: Port


@cache
def _entries() -> TypeAdapter[list[PreconfiguredPorts]]:
    """The validator of the file's list, built on first use (building one at import costs every command)."""
    return TypeAdapter(list[PreconfiguredPorts])


def load_preconfig(path: Path) -> dict[Key, tuple[int, int]]:
    """Read ``port_config.json`` into ``{(model, app_num): (backend, frontend)}``.

    Raises ``ConfigError`` naming the file for anything that is not a valid list of
    entries, and for two entries that share a key or a port; ``UnsafeFile`` for a file
    that is not a regular file or is larger than ``MAX_CONFIG_BYTES``.
    """
    try:
        text = read_regular_file(path, "pre-configuration file", MAX_CONFIG_BYTES).data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"pre-configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"cannot read pre-configuration file {path}: {getattr(error, 'strerror', None) or error}"
        ) from None
    try:
        raw = parse_json(text)
    except ValueError as error:
        raise ConfigError(f"{path} is {error}") from None
    try:
        entries = _entries().validate_python(raw)
    except ValidationError as error:
        raise ConfigError(f"{path} is not a valid port configuration: {describe_validation_error(error)}") from None
    pairs: dict[Key, tuple[int, int]] = {}
    owners: dict[int, str] = {}
    for entry in entries:
        key = (entry.model, entry.app_number)
        label = f"{entry.model}/{entry.app_number}"
        if key in pairs:
            raise ConfigError(f"{path}: {label} is configured twice")
        if entry.backend_port == entry.frontend_port:
            raise ConfigError(f"{path}: {label} has the same backend and frontend port {entry.backend_port}")
        for port in (entry.backend_port, entry.frontend_port):
            if port in owners:
                raise ConfigError(f"{path}: port {port} is configured for both {owners[port]} and {label}")
            owners[port] = label
        pairs[key] = (entry.backend_port, entry.frontend_port)
    return pairs
