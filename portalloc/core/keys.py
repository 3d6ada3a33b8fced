"""What a ledger key is: a model name and an app number, and where its app lives on disk.

This module is deliberately free of pydantic so that the command line's lookup path
can validate a key without importing it.

A model name is compared as Unicode NFC: ``café`` typed precomposed and ``café`` typed
as ``e`` + combining accent are one model, stored precomposed. Characters that cannot
be seen (controls, format characters, default-ignorable code points, spaces other than
U+0020), lone combining marks, surrogates and noncharacters are refused, so two keys
never print the same. These rules give one answer on every supported Python, so a
ledger written by one loads on all; what only holds when a model first enters the
ledger (its code points assigned in this Python's Unicode, no look-alike of an
existing model) is ``core/names.py``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from portalloc.core.limits import MAX_APP_NUM, MAX_MODEL_LENGTH
from portalloc.errors import InvalidKey

_PATH_SEPARATORS = re.compile(r"[/\\]")
#: Categories no model name may contain: controls, format characters (zero-width space,
#: bidi overrides, soft hyphen…), line/paragraph separators, surrogates (what a non-UTF-8
#: byte on the command line becomes). Unassigned code points are refused only in a new name
#: (``names.check_new_model``): a newer Python may have assigned them.
_REFUSED_CATEGORIES = {"Cc": "control", "Cf": "invisible", "Zl": "control", "Zp": "control", "Cs": "surrogate"}
#: Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt) that are not
#: already Cf or Cn: fillers and variation selectors render as nothing.
_DEFAULT_IGNORABLE = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
)
#: Characters that stand for themselves in a model's directory name; every other ASCII
#: character is written ``%XX``. Non-ASCII characters (all visible, see above) stay as they are.
_DIR_SAFE = frozenset(string.ascii_letters + string.digits + "._-")


def _model_name_pattern() -> str:
    # Without lookaround (fuzzers such as hypothesis cannot generate from it): a name is
    # segments between "/" or "\\", none of them "." or "..", with no whitespace at either end.
    control = r"\u0000-\u001f\u007f-\u009f"
    part = rf"[^{control}/\\]"  # any character of a segment
    head = rf"[^{control}/\\.]"  # one that is not a dot
    head_solid = rf"[^{control}/\\.\s]"  # nor whitespace
    tail_solid = rf"[^{control}/\\\s]"  # a segment's last character at the name's end
    middle = rf"(?:{head}{part}*|\.{head}{part}*|\.\.{part}+)?"
    first = rf"(?:{head_solid}{part}*|\.{head}{part}*|\.\.{part}+)?"
    dotted = rf"\.{head_solid}|\.{head}{part}*{tail_solid}|\.\.{part}*{tail_solid}"  # ".x", ".x y", "..."
    last = rf"(?:{head_solid}|{head}{part}*{tail_solid}|{dotted})?"
    only = rf"(?:{head_solid}|{head_solid}{part}*{tail_solid}|{dotted})"
    return rf"^(?:{only}|{first}(?:[/\\]{middle})*[/\\]{last})$"


#: What ``check_model_name`` asks of a name, as far as one portable regular expression
#: (Python's and ECMAScript's) can say it: no control character, no whitespace at either
#: end, no "." or ".." path segment. Exact for ASCII names; the Unicode rules (invisible
#: characters, unassigned code points, lone marks) stay with the check alone.
MODEL_NAME_PATTERN = _model_name_pattern()


def _refusal(char: str, previous: str | None) -> str | None:
    """Why ``char`` (after ``previous``) cannot be in a model name, or ``None``."""
    category = unicodedata.category(char)
    if category in _REFUSED_CATEGORIES:
        return f"the {_REFUSED_CATEGORIES[category]} character {char!r}"
    if category == "Cn" and _is_noncharacter(ord(char)):
        return f"the noncharacter U+{ord(char):04X}"
    if category == "Zs" and char != " ":
        return f"the space character U+{ord(char):04X} (only a plain space may be used)"
    if any(low <= ord(char) <= high for low, high in _DEFAULT_IGNORABLE):
        return f"the invisible character U+{ord(char):04X}"
    if category.startswith("M") and (previous is None or previous in " /\\"):
        return f"the combining mark U+{ord(char):04X} with no letter to combine with"
    return None


def _is_noncharacter(point: int) -> bool:
    """Unicode's 66 noncharacters: never assigned by any version, so refused by every one."""
    return 0xFDD0 <= point <= 0xFDEF or point & 0xFFFE == 0xFFFE


#: ``(model, app_num)``: what names one allocation.
Key = tuple[str, int]

#: ``(model, app_num, backend, frontend)``: an allocation as plain values (the machine layer's input).
AllocationRow = tuple[str, int, int, int]


class Claim(NamedTuple):
    """One key holding a port, and in which role (``None`` for a key listed twice): who a port is held by."""

    model: str
    app_num: int
    role: str | None

    def describe(self) -> str:
        """``model/app (role)``."""
        return f"{self.model}/{self.app_num}" + (f" ({self.role})" if self.role else "")


def check_model_name(model: str) -> str:
    """Return ``model`` in NFC if it can be a ledger key, else raise ``InvalidKey``.

    A model name is 1 to 200 characters (after NFC), has no invisible or control
    characters, no lone combining mark and no surrogate, does not start or end with
    whitespace (``"model_a "`` would silently be a second key) and has no ``.`` or
    ``..`` path segment (``"openai/gpt-4o"`` is fine, ``"../x"`` is not).
    """
    if not isinstance(model, str):
        raise InvalidKey(f"model must be a string, not {type(model).__name__}")
    if not model.isascii():
        # Surrogates first: they are what undecodable bytes become, and NFC keeps them as they are.
        for char in model:
            if unicodedata.category(char) == "Cs":
                raise InvalidKey(f"model {model!r} is not valid UTF-8 text (it contains {char!r})")
        model = unicodedata.normalize("NFC", model)
    if not model.strip():
        raise InvalidKey("model must not be empty")
    if len(model) > MAX_MODEL_LENGTH:
        raise InvalidKey(f"model is {len(model)} characters long; the limit is {MAX_MODEL_LENGTH}")
    if model != model.strip():
        raise InvalidKey(f"model {model!r} starts or ends with whitespace")
    if not (model.isascii() and model.isprintable()):  # the common name is printable ASCII: one C call
        previous: str | None = None
        for char in model:
            if (char.isascii() and char.isprintable()) or (reason := _refusal(char, previous)) is None:
                previous = char
                continue
            raise InvalidKey(f"model {model!r} contains {reason}")
    if "." in model and any(part in (".", "..") for part in _PATH_SEPARATORS.split(model)):
        # Scaffolding scripts build paths from model names; "../x" is a traversal, not a model.
        raise InvalidKey(f"model {model!r} contains a '.' or '..' path segment")
    return model


def check_app_num(app_num: int) -> int:
    """Return ``app_num`` if it is a whole number from 1 to 1,000,000, else raise ``InvalidKey``."""
    if isinstance(app_num, bool) or not isinstance(app_num, int) or not 1 <= app_num <= MAX_APP_NUM:
        raise InvalidKey(bad_app_num(app_num))
    return app_num


def parse_app_num(text: str) -> int:
    """The app number a person typed (a command-line argument, a line of a key list, a URL segment).

    Plain ASCII digits only: ``int()`` would also take ``"1_0"``, ``" 1"`` and non-ASCII
    digits. Raises ``InvalidKey`` with the one message every face shows (``bad_app_num``).
    """
    # Eleven digits are already past MAX_APP_NUM: a longer run is refused before int() reads it.
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and 1 <= int(text) <= MAX_APP_NUM):
        raise InvalidKey(bad_app_num(text))
    return int(text)


def bad_app_num(value: object) -> str:
    """What is said about ``value`` when it is not an app number, typed (``'0'``, ``get m -1``) or read (``0``)."""
    return f"app_num must be a whole number from 1 to {MAX_APP_NUM:,}, not {value!r}"


def check_key(model: str, app_num: int) -> tuple[str, int]:
    """``(model, app_num)`` with the model in NFC if both are valid, else raise ``InvalidKey``."""
    return check_model_name(model), check_app_num(app_num)


def model_dir_name(model: str) -> str:
    """The directory name of a model's apps: one path component, different for every model.

    ASCII letters, digits, ``_``, ``-`` and ``.`` stay as they are, and so does every
    non-ASCII character; every other ASCII character becomes ``%`` and its two-digit
    hex code (``/`` → ``%2F``, space → ``%20``, ``%`` → ``%25``), and so does a ``.``
    that starts or ends the name (no hidden directories, nothing Windows would trim).
    Because ``%`` itself is escaped, the mapping is one-to-one and
    ``urllib.parse.unquote`` reverses it: ``openai/gpt-4o`` → ``openai%2Fgpt-4o``,
    ``a_b`` → ``a_b``, ``a b`` → ``a%20b``, ``café`` → ``café``.

    ``model`` is validated (and NFC-normalised) first; an invalid one raises ``InvalidKey``.
    """
    model = check_model_name(model)
    out = [char if char in _DIR_SAFE or not char.isascii() else f"%{ord(char):02X}" for char in model]
    for end in (0, -1):
        if model[end] == ".":
            out[end] = "%2E"
    return "".join(out)


def names_by_nfc(names: Iterable[str]) -> dict[str, str]:
    """Directory ``names`` as found on disk, keyed by their NFC form, for those that are not in NFC.

    ``model_dir_name`` is NFC, and so is every name portalloc creates; an archive or a
    copy made on macOS spells ``café`` as ``cafe`` + U+0301, which Linux treats as
    another name. Names already in NFC are left out: they are found as they are.
    """
    found: dict[str, str] = {}
    for name in names:
        if name.isascii():
            continue  # its own NFC: nothing to map
        canonical = unicodedata.normalize("NFC", name)
        if canonical != name and canonical not in found:
            found[canonical] = name
    return found


def app_dir(apps_dir: Path, model: str, app_num: int) -> Path:
    """Where the app ``(model, app_num)`` lives: ``<apps_dir>/<model_dir_name(model)>/app<N>``."""
    return apps_dir / model_dir_name(model) / f"app{check_app_num(app_num)}"


_APP_DIR = re.compile(r"app([1-9][0-9]*)")


def key_of_app_dir(directory: Path) -> tuple[str, int]:
    """The key whose app lives in ``directory`` (``…/<model dir>/app<N>``): ``app_dir`` read backwards.

    The parent's name is decoded as ``model_dir_name`` encodes it (``openai%2Fgpt-4o`` →
    ``openai/gpt-4o``); a name that encoding would not produce (``openai_gpt-4o`` is
    itself, ``a b`` is not ``a%20b``) is refused rather than taken as a second model.
    ``directory`` should be absolute (``Path(".")`` has no name). Raises ``InvalidKey``.
    """
    from urllib.parse import unquote

    match = _APP_DIR.fullmatch(directory.name)
    if match is None:
        raise InvalidKey(f"{directory} is not an app directory: its name is not app<N> (app1, app2, …)")
    encoded = directory.parent.name
    model = unquote(encoded)  # a bad %XX decodes to U+FFFD, which the check below refuses
    try:
        valid = bool(encoded) and model_dir_name(model) == encoded
    except InvalidKey:
        valid = False
    if not valid:
        raise InvalidKey(
            f"{directory.parent} is not a model's directory: no model name is written {encoded!r} "
            "(they are written as `portalloc cleanup` expects: openai/gpt-4o → openai%2Fgpt-4o)"
        )
    return model, check_app_num(int(match.group(1)))
