"""One entry of ``port_config.json`` as a pydantic model: the reference its plain reader is held to.

``storage.preconfig`` reads the file without pydantic where every entry is valid
(``tests/storage/test_preconfig.py`` pins it to this model) and asks this model to say
what is wrong with any other; ``integrations.importers`` validates entries with it too.
"""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, TypeAdapter

from portalloc.core.models import AppNum, ModelName, Port


class PreconfiguredPorts(BaseModel):
    """One entry of ``port_config.json``."""

    # Its validator is built when a file is first read: most ledgers have no pre-configuration.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", defer_build=True)

    model: ModelName
    app_number: AppNum
    backend_port: Port
    frontend_port: Port


@cache
def entries_adapter() -> TypeAdapter[list[PreconfiguredPorts]]:
    """The validator of the file's list, built on first use (building one at import costs every command)."""
    return TypeAdapter(list[PreconfiguredPorts])
