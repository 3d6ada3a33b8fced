"""Shell completion of MODEL and APP_NUM from the ledger: read lock-free, never allocating.

click completes commands and options by itself (``_PORTALLOC_COMPLETE=bash_source
portalloc`` prints the script). For the key arguments it asks the parameter types,
which ask here. A completion runs on every Tab press, so this reads the ledger with the
codec's fast reader (``codec.read_document``: strict JSON, a repeated name refused, as
every reader refuses it; no pydantic, no lock: a rename is atomic, so a reader never
sees half a file) and answers nothing rather than an error: a shell has nowhere to show one.
"""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.core.limits import MAX_LEDGER_BYTES
from portalloc.errors import PortallocError
from portalloc.storage.codec import read_document
from portalloc.storage.files import read_regular_file
from portalloc.storage.paths import find_ledger

#: What ``--ledger`` is called in the root context's parameters.
_LEDGER_PARAM = "ledger"


def ledger_keys(path: Path) -> list[tuple[str, int]]:
    """The ``(model, app_num)`` keys of the ledger at ``path``, sorted; ``[]`` if it cannot be read."""
    try:
        text = read_regular_file(path, "ledger", MAX_LEDGER_BYTES).data.decode("utf-8")
    except (OSError, ValueError, PortallocError):  # UnsafeFile is a PortallocError, UnicodeDecodeError a ValueError
        return []
    document = read_document(text)
    if document is None:
        return []
    keys = {(model, app_num) for model, app_num, _, _ in document.rows if type(model) is str and type(app_num) is int}
    return sorted(keys)


def completion_ledger(ctx: click.Context) -> Path:
    """The ledger a command being completed would use: ``--ledger``, ``PORTALLOC_LEDGER``, or the default.

    click has parsed the global options (the environment variable included) into the
    root context by the time a parameter is completed; the group's callback, which
    resolves the default, has not run.
    """
    given = ctx.find_root().params.get(_LEDGER_PARAM)
    return Path(given) if given is not None else find_ledger(Path.cwd())


def complete_models(ctx: click.Context, incomplete: str) -> list[str]:
    """The ledger's model names that start with ``incomplete``."""
    models = dict.fromkeys(model for model, _ in ledger_keys(completion_ledger(ctx)))
    return [model for model in models if model.startswith(incomplete)]


def complete_app_nums(ctx: click.Context, incomplete: str) -> list[str]:
    """The app numbers of the model already typed (or of every model) that start with ``incomplete``."""
    model = ctx.params.get("model")
    numbers = dict.fromkeys(
        str(app_num) for key_model, app_num in ledger_keys(completion_ledger(ctx)) if model in (None, key_model)
    )
    return [number for number in numbers if number.startswith(incomplete)]
