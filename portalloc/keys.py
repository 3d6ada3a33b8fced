"""What a ledger key is: a model name and an app number, and where its app lives on disk.

This module is deliberately free of pydantic so that the command line's lookup path
can validate a key without importing it.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from portalloc.errors import InvalidKey
from portalloc.limits import MAX_APP_NUM, MAX_MODEL_LENGTH

_UNSAFE_DIR_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_PATH_SEPARATORS = re.compile(r"[/\\]")


def check_model_name(model: str) -> str:
    """Return ``model`` unchanged if it can be a ledger key, else raise ``InvalidKey``.

    A model name is 1 to 200 characters, has no control characters, does not start
    or end with whitespace (``"model_a "`` would silently be a second key) and has no
    ``.`` or ``..`` path segment (``"openai/gpt-4o"`` is fine, ``"../x"`` is not).
    """
    if not isinstance(model, str):
        raise InvalidKey(f"model must be a string, not {type(model).__name__}")
    if not model.strip():
        raise InvalidKey("model must not be empty")
    if len(model) > MAX_MODEL_LENGTH:
        raise InvalidKey(f"model is {len(model)} characters long; the limit is {MAX_MODEL_LENGTH}")
    if model != model.strip():
        raise InvalidKey(f"model {model!r} starts or ends with whitespace")
    for char in model:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise InvalidKey(f"model {model!r} contains the control character {char!r}")
    if any(part in (".", "..") for part in _PATH_SEPARATORS.split(model)):
        # Scaffolding scripts build paths from model names; "../x" is a traversal, not a model.
        raise InvalidKey(f"model {model!r} contains a '.' or '..' path segment")
    return model


def check_app_num(app_num: int) -> int:
    """Return ``app_num`` if it is a whole number from 1 to 1,000,000, else raise ``InvalidKey``."""
    if isinstance(app_num, bool) or not isinstance(app_num, int):
        raise InvalidKey(f"app_num must be a whole number, not {app_num!r}")
    if not 1 <= app_num <= MAX_APP_NUM:
        raise InvalidKey(f"app_num must be from 1 to {MAX_APP_NUM:,}, not {app_num}")
    return app_num


def check_key(model: str, app_num: int) -> tuple[str, int]:
    """``(model, app_num)`` if both are valid, else raise ``InvalidKey``."""
    return check_model_name(model), check_app_num(app_num)


def model_dir_name(model: str) -> str:
    """The directory name an app's model gets on disk.

    Every character other than ASCII letters, digits, ``.``, ``_`` and ``-`` becomes
    ``_``, and a name made only of dots becomes underscores, so the result is always
    one path component: ``../x`` → ``.._x``, ``..`` → ``__``, ``openai/gpt-4o`` →
    ``openai_gpt-4o``.
    """
    safe = _UNSAFE_DIR_CHARS.sub("_", model)
    if set(safe) <= {"."}:
        safe = "_" * len(safe)
    return safe


def app_dir(apps_dir: Path, model: str, app_num: int) -> Path:
    """Where the app ``(model, app_num)`` lives: ``<apps_dir>/<model_dir_name(model)>/app<N>``."""
    return apps_dir / model_dir_name(model) / f"app{app_num}"
