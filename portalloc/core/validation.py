"""How a failed validation reaches a user: one line, ``where: what``, and ``InvalidValue`` from the API.

The models (``core.models``) raise pydantic's ``ValidationError``; the API's callers,
the ledger's reader, the pre-configuration reader and the importers each turn it into
one line through ``describe_validation_error``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from portalloc.errors import InvalidValue


class ApiErrors(type(BaseModel)):  # type: ignore[misc]  # pydantic's metaclass, reached without its private module
    """Building a model by calling it (the API's way in) raises ``InvalidValue``, one line, not pydantic's error.

    Only the call: the ledger's reader validates with ``model_validate``, nested models
    are built by pydantic-core without it, and both keep pydantic's error (the reader
    names the file and the field itself). A metaclass rather than an ``__init__``,
    because a model with its own ``__init__`` is built through it even when nested.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as error:
            name = "PortPair" if cls.__name__ == "Allocation" else cls.__name__  # the name users meet
            raise InvalidValue(f"invalid {name}: {describe_validation_error(error)}") from None


def describe_validation_error(error: ValidationError) -> str:
    """The first problem pydantic found, as ``where: what`` on one line."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    more = error.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {message}{suffix}" if where else f"{message}{suffix}"
