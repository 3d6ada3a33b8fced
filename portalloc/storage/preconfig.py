"""Pre-configured ports: the platform's ``port_config.json``.

The file is a JSON list of ``{"model", "app_number", "backend_port", "frontend_port"}``
objects (other fields are ignored). A pre-configured pair wins for its key when both
ports are free; until its key is allocated, no other key is given those ports.
"""

from __future__ import annotations

from pathlib import Path

from portalloc.core.keys import Key, check_app_num, check_model_name
from portalloc.core.limits import MAX_CONFIG_BYTES, MAX_PORT, MIN_PORT
from portalloc.errors import ConfigError, PortallocError
from portalloc.storage.files import read_regular_file
from portalloc.storage.strictjson import parse_json

#: An entry's fields, in the order they are read (``preconfigentry.PreconfiguredPorts``'s; others are ignored).
ENTRY_FIELDS = ("model", "app_number", "backend_port", "frontend_port")
Entry = tuple[str, int, int, int]


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
    entries = plain_entries(raw)
    if entries is None:
        entries = _validated(path, raw)
    pairs: dict[Key, tuple[int, int]] = {}
    owners: dict[int, str] = {}
    for model, app_number, backend_port, frontend_port in entries:
        key = (model, app_number)
        label = f"{model}/{app_number}"
        if key in pairs:
            raise ConfigError(f"{path}: {label} is configured twice")
        if backend_port == frontend_port:
            raise ConfigError(f"{path}: {label} has the same backend and frontend port {backend_port}")
        for port in (backend_port, frontend_port):
            if port in owners:
                raise ConfigError(f"{path}: port {port} is configured for both {owners[port]} and {label}")
            owners[port] = label
        pairs[key] = (backend_port, frontend_port)
    return pairs


def plain_entries(raw: object) -> list[Entry] | None:
    """The entries of a parsed file if ``PreconfiguredPorts`` accepts every one (models in NFC), else ``None``.

    The model's rules written out without pydantic: a list of objects, each with a model
    name, an app number and two ports, strictly typed (``true`` is not a number); other
    fields are ignored.
    """
    if type(raw) is not list:
        return None
    entries = []
    for entry in raw:
        if type(entry) is not dict or not all(name in entry for name in ENTRY_FIELDS):
            return None
        model, app_number, backend_port, frontend_port = (entry[name] for name in ENTRY_FIELDS)
        if type(model) is not str or type(app_number) is not int:
            return None
        if not all(type(port) is int and MIN_PORT <= port <= MAX_PORT for port in (backend_port, frontend_port)):
            return None
        try:
            entries.append((check_model_name(model), check_app_num(app_number), backend_port, frontend_port))
        except PortallocError:
            return None
    return entries


def _validated(path: Path, raw: object) -> list[Entry]:
    """The entries as ``PreconfiguredPorts`` reads them, or ``ConfigError`` saying what it finds wrong.

    For a file the plain reader did not accept (the model then refuses it too, and says why:
    ``tests/storage/test_preconfig.py`` pins that the two accept the same files, alike).
    """
    from pydantic import ValidationError

    from portalloc.core.validation import describe_validation_error
    from portalloc.storage.preconfigentry import entries_adapter

    try:
        entries = entries_adapter().validate_python(raw)
    except ValidationError as error:
        raise ConfigError(f"{path} is not a valid port configuration: {describe_validation_error(error)}") from None
    return [(entry.model, entry.app_number, entry.backend_port, entry.frontend_port) for entry in entries]
