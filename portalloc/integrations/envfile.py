"""``.env`` files: reading them as docker compose does, and the portalloc block in them. Pure (bytes in, bytes out).

The block looks like this, and is the only part of the file portalloc writes::

    # >>> portalloc: model_a/1 >>>
    BACKEND_PORT=5001
    FRONTEND_PORT=8001
    # <<< portalloc <<<

A file is handled as bytes, so lines outside the block keep their exact bytes, line
endings and encoding. A new block goes at the top, after the file's leading comment,
so that a later ``API_URL=http://localhost:${BACKEND_PORT}`` resolves (loaders expand
a reference only from lines above it); a block the user moved stays where it is. A
damaged block (a begin marker without an end, or two blocks) is an error: guessing
where it ends could eat the user's lines.

Reading follows docker compose (compose-go's dotenv), the loader whose answer matters
for ``compose-check``: a UTF-8 BOM is skipped, only ``\\n`` ends a line (a lone ``\\r``
is part of the value, as compose reads it), ``export NAME=value`` and ``NAME: value``
both assign, single quotes are literal, double quotes take ``\\n``-style escapes and
may span lines, an unquoted value ends at `` #``, and ``${…}`` in unquoted and
double-quoted values is expanded by compose's rules (``portalloc.integrations.interpolation``) from
the environment first, then from the lines above.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from typing import NamedTuple

from portalloc.errors import EnvFileError
from portalloc.integrations.interpolation import Interpolator, Unresolved

BEGIN = "# >>> portalloc: {label} >>>"
END = "# <<< portalloc <<<"
BOM = b"\xef\xbb\xbf"
_BEGIN = re.compile(rb"# >>> portalloc(?:: (?P<label>.*?))? >>>[ \t]*\Z")
_END = re.compile(rb"# <<< portalloc <<<[ \t]*\Z")
_KEY = re.compile(r"[ \t]*(?:export[ \t]+)?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*(?P<sep>=|:[ \t])")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class EnvValue(NamedTuple):
    """One assignment of a ``.env`` file: the line it starts on (1-based) and its value."""

    line: int
    value: str


def _split(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def _strip_eol(line: bytes) -> bytes:
    return line.rstrip(b"\n").removesuffix(b"\r")


def refuse_other_encodings(data: bytes, where: str) -> None:
    """Raise ``EnvFileError`` for a UTF-16/UTF-32 file (what PowerShell 5 writes): a UTF-8 block would ruin it."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise EnvFileError(
            f"{where} is not UTF-8 (it looks like UTF-16, as PowerShell 5 writes); "
            "docker compose and python-dotenv cannot read it either: save it as UTF-8"
        )


def _block_span(lines: list[bytes], where: str) -> tuple[int, int] | None:
    """``(first, last)`` line index of the block, ``None`` if there is none; raise if it is damaged."""
    begins = [i for i, line in enumerate(lines) if _BEGIN.match(_strip_eol(line).removeprefix(BOM))]
    ends = [i for i, line in enumerate(lines) if _END.match(_strip_eol(line))]
    if not begins and not ends:
        return None
    if len(begins) > 1 or len(ends) > 1:
        raise EnvFileError(f"{where} has more than one portalloc block (lines {_line_list(begins + ends)}); keep one")
    if not begins or not ends or ends[0] < begins[0]:
        line = (begins or ends)[0] + 1
        raise EnvFileError(
            f"{where} has a damaged portalloc block at line {line} "
            f"(expected one {BEGIN.format(label='…')!r} line followed by one {END!r} line)"
        )
    return begins[0], ends[0]


def check_block(data: bytes, where: str = ".env") -> None:
    """Raise ``EnvFileError`` if ``data`` is not UTF-8 or has a damaged or doubled portalloc block."""
    refuse_other_encodings(data, where)
    _block_span(_split(data), where)


def _line_list(indexes: list[int]) -> str:
    return ", ".join(str(i + 1) for i in sorted(indexes))


def _line_ending(data: bytes) -> bytes:
    first = data.find(b"\n")
    return b"\r\n" if first > 0 and data[first - 1 : first] == b"\r" else b"\n"


def _top(lines: list[bytes]) -> int:
    """Where a new block goes: after the leading comment (and blank) lines, before the first assignment."""
    index = 0
    while index < len(lines) and lines[index].endswith(b"\n"):
        text = _strip_eol(lines[index]).removeprefix(BOM if index == 0 else b"").strip()
        if text and not text.startswith(b"#"):
            break
        index += 1
    return index


def update_block(data: bytes, label: str, variables: Mapping[str, str], where: str = ".env") -> bytes:
    """``data`` with the portalloc block for ``label`` set to ``variables`` (added at the top if absent).

    Every line outside the block is kept byte for byte, the missing final newline
    included. ``where`` names the file in errors.
    """
    refuse_other_encodings(data, where)
    lines = _split(data)
    span = _block_span(lines, where)
    # A block keeps its own line ending (so a rewrite changes nothing); a new one takes the file's.
    eol = _line_ending(lines[span[0]] if span is not None else data)
    block = [
        BEGIN.format(label=label).encode("utf-8") + eol,
        *(f"{name}={value}".encode() + eol for name, value in variables.items()),
        END.encode("utf-8") + eol,
    ]
    if span is not None:
        first, last = span
        bom = BOM if first == 0 and lines[0].startswith(BOM) else b""
        return b"".join([*lines[:first], bom, *block, *lines[last + 1 :]])
    at = _top(lines)
    if at == 0 and lines and lines[0].startswith(BOM):
        return BOM + b"".join(block) + data[len(BOM) :]
    return b"".join([*lines[:at], *block, *lines[at:]])


def block_label(data: bytes) -> str | None:
    """The label (``model/app_num``) of the file's portalloc block, or ``None`` if it has no intact one."""
    lines = _split(data)
    try:
        span = _block_span(lines, ".env")
    except EnvFileError:
        return None
    if span is None:
        return None
    match = _BEGIN.match(_strip_eol(lines[span[0]]).removeprefix(BOM))
    label = match.group("label") if match else None
    return label.decode("utf-8", "replace") if label is not None else None


def references_above_block(data: bytes, names: list[str]) -> list[tuple[int, str]]:
    """``(line, name)`` for each line above the block that refers to one of ``names`` (it would expand empty)."""
    lines = _split(data)
    try:
        span = _block_span(lines, ".env")
    except EnvFileError:
        return []
    if span is None:
        return []
    found = []
    for index, line in enumerate(lines[: span[0]]):
        text = line.decode("utf-8", "replace")
        for name in names:
            if re.search(rf"\$(?:\{{{name}(?![A-Za-z0-9_])|{name}(?![A-Za-z0-9_]))", text):
                found.append((index + 1, name))
    return found


def parse(data: bytes, environ: Mapping[str, str], *, outside_block: bool = False) -> dict[str, EnvValue]:
    """The variables a ``.env`` file sets, read as docker compose reads it (the last assignment wins).

    ``environ`` is consulted first when a value refers to ``${NAME}``, as compose does;
    ``outside_block`` skips the portalloc block. A damaged block is read as ordinary lines.
    Raises ``EnvFileError`` for a file compose cannot read (UTF-16, an unclosed quote).
    """
    refuse_other_encodings(data, ".env")
    # A stray Latin-1 byte is read, not refused: compose reads such a file too.
    text = data.removeprefix(BOM).decode("utf-8", "replace")
    lines = text.split("\n")
    skip: range = range(0)
    if outside_block:
        try:
            span = _block_span(_split(data), ".env")
        except EnvFileError:
            span = None
        skip = range(span[0], span[1] + 1) if span is not None else skip
    found: dict[str, EnvValue] = {}
    values: dict[str, str] = {}  # found's values, seen live by the interpolator
    expand = Interpolator(ChainMap(dict(environ), values))
    index = 0
    while index < len(lines):
        start = index
        line = lines[index].removesuffix("\r")
        index += 1
        match = _KEY.match(line)
        if match is None or start in skip:
            continue
        rest = line[match.end() :].lstrip(" \t")
        quote = rest[:1]
        if quote in ("'", '"'):
            body = rest[1:]
            end = _closing_quote(body, quote)
            while end < 0 and index < len(lines):  # a quoted value may span lines
                body += "\n" + lines[index]
                index += 1
                end = _closing_quote(body, quote)
            if end < 0:
                raise EnvFileError(f".env line {start + 1}: the {quote} quote is not closed")
            raw = body[:end]
            value = raw if quote == "'" else _expand(_unescape(raw), expand, start)
        else:
            comment = re.search(r"[ \t]#", rest)
            raw = (rest[: comment.start()] if comment else rest).strip()
            value = _expand(raw, expand, start)
        found[match.group("name")] = EnvValue(start + 1, value)
        values[match.group("name")] = value
    return found


def assignments(data: bytes, *, outside_block: bool = False) -> dict[str, tuple[int, str]]:
    """``{name: (line number, value)}`` as ``parse`` reads them with an empty environment."""
    return {name: (item.line, item.value) for name, item in parse(data, {}, outside_block=outside_block).items()}


def _closing_quote(body: str, quote: str) -> int:
    index = 0
    while index < len(body):
        if body[index] == "\\" and quote == '"':
            index += 2
            continue
        if body[index] == quote:
            return index
        index += 1
    return -1


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), raw)


def _expand(value: str, expand: Interpolator, index: int) -> str:
    """``value`` interpolated as compose does in ``.env``: the environment first, then the lines above."""
    if "$" not in value:
        return value
    try:
        return expand(value)
    except Unresolved as error:
        raise EnvFileError(f".env line {index + 1}: {error}") from None
