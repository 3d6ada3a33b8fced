"""A batch of keys, as ``get-many`` and ``release-many`` read it: text lines, JSON lines or a JSON array.

- ``lines``: ``MODEL APP_NUM`` per line (the model is everything before the last run of
  whitespace, so a model name may hold spaces); blank lines and ``#`` comments are skipped.
- ``jsonl``: one JSON object per line with ``model`` and ``app_num``.
- ``json``: a JSON array of such objects (what ``list --json`` prints, so it feeds back in).

``auto`` picks by the first non-blank character: ``[`` is an array, ``{`` JSON lines,
anything else text lines. Every bad line is collected and reported together, with its
line number, so one run shows the user everything to fix; nothing is allocated then.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from portalloc.core.keys import Key, check_key, parse_app_num
from portalloc.core.limits import MAX_BATCH_BYTES
from portalloc.errors import BatchInputError, InvalidKey
from portalloc.storage.files import read_regular_file
from portalloc.storage.strictjson import parse_json

FORMATS = ("auto", "lines", "jsonl", "json")
#: How many bad lines the error message names before it says "and N more".
_SHOWN_PROBLEMS = 20


def read_keys(source: str, fmt: str = "auto") -> list[Key]:
    """The keys in the file ``source`` (``-`` is standard input), read within ``MAX_BATCH_BYTES``."""
    if source == "-":
        data = sys.stdin.buffer.read(MAX_BATCH_BYTES + 1)
        if len(data) > MAX_BATCH_BYTES:
            raise BatchInputError(f"standard input is more than {MAX_BATCH_BYTES:,} bytes; the limit is that")
        return parse_keys(data, "standard input", fmt)
    try:
        data = read_regular_file(Path(source), "batch file", MAX_BATCH_BYTES).data
    except FileNotFoundError:
        raise BatchInputError(f"batch file {source} does not exist") from None
    except OSError as error:
        raise BatchInputError(f"cannot read batch file {source}: {error.strerror or error}") from None
    return parse_keys(data, source, fmt)


def parse_keys(data: bytes, source: str, fmt: str = "auto") -> list[Key]:
    """The keys in ``data`` in order, or ``BatchInputError`` naming every bad line of ``source``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BatchInputError(f"{source} is not UTF-8 text (byte {error.start})") from None
    if fmt == "auto":
        first = text.lstrip()[:1]
        fmt = "json" if first == "[" else "jsonl" if first == "{" else "lines"
    keys: list[Key] = []
    problems: list[str] = []
    for number, item in _items(text, fmt, source):
        try:
            keys.append(_key(item))
        except (InvalidKey, ValueError) as error:
            problems.append(f"line {number}: {error}" if number else str(error))
    if problems:
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        more = f"; and {len(problems) - _SHOWN_PROBLEMS} more" if len(problems) > _SHOWN_PROBLEMS else ""
        plural = "s" if len(problems) > 1 else ""
        raise BatchInputError(f"{source} has {len(problems)} bad line{plural}, nothing done: {shown}{more}")
    return keys


def _items(text: str, fmt: str, source: str) -> list[tuple[int, Any]]:
    """``(line number, raw item)`` pairs; an item that failed to parse is the ``ValueError`` itself."""
    if fmt == "json":
        try:
            array = parse_json(text)
        except ValueError as error:
            raise BatchInputError(f"{source} is {error}") from None
        if not isinstance(array, list):
            raise BatchInputError(f"{source} is JSON but not an array of keys (found {type(array).__name__})")
        return _numbered_array(text, array)
    items: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or (fmt == "lines" and stripped.startswith("#")):
            continue
        if fmt == "lines":
            items.append((number, _text_key(stripped)))
            continue
        try:
            items.append((number, parse_json(stripped)))
        except ValueError as error:
            items.append((number, ValueError(f"not a JSON object ({error})")))
    return items


def _numbered_array(text: str, array: list[Any]) -> list[tuple[int, Any]]:
    """Each element with the line it starts on (the array is already known to be valid JSON)."""
    decoder = json.JSONDecoder()
    numbered: list[tuple[int, Any]] = []
    position = text.index("[") + 1
    line, counted = 1, 0
    for element in array:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        line += text.count("\n", counted, position)  # counted incrementally: a long array stays linear
        counted = position
        numbered.append((line, element))
        _, position = decoder.raw_decode(text, position)
    return numbered


def _text_key(line: str) -> Any:
    parts = line.split()
    if len(parts) < 2:
        return ValueError(f"expected MODEL APP_NUM, found {line!r}")
    app_num = parts[-1]
    model = line[: len(line) - len(app_num)].rstrip()
    try:
        return {"model": model, "app_num": parse_app_num(app_num)}
    except InvalidKey as error:
        return ValueError(str(error))


def _key(item: Any) -> Key:
    if isinstance(item, ValueError):
        raise item
    if not isinstance(item, dict):
        raise ValueError(f"expected an object with model and app_num, found {type(item).__name__}")
    missing = [name for name in ("model", "app_num") if name not in item]
    if missing:
        raise ValueError(f"missing {' and '.join(missing)}")
    return check_key(item["model"], item["app_num"])
