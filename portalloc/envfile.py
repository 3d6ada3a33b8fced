"""The portalloc block of a ``.env`` file: write or replace it, keeping every other byte. Pure (bytes in, bytes out).

The block looks like this, and is the only part of the file portalloc touches::

    # >>> portalloc: model_a/1 >>>
    BACKEND_PORT=5001
    FRONTEND_PORT=8001
    # <<< portalloc <<<

A file is handled as bytes, so lines outside the block keep their exact bytes, line
endings and encoding. A new block is appended at the end using the file's own line
ending. A damaged block (a begin marker without an end, or two blocks) is an error:
guessing where it ends could eat the user's lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from portalloc.errors import EnvFileError

BEGIN = "# >>> portalloc: {label} >>>"
END = "# <<< portalloc <<<"
_BEGIN = re.compile(rb"# >>> portalloc(?:: (?P<label>.*?))? >>>[ \t]*\Z")
_END = re.compile(rb"# <<< portalloc <<<[ \t]*\Z")
_ASSIGNMENT = re.compile(rb"[ \t]*(?:export[ \t]+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=(?P<value>.*)\Z")


def _strip_eol(line: bytes) -> bytes:
    return line.rstrip(b"\r\n")


def _block_span(lines: list[bytes], where: str) -> tuple[int, int] | None:
    """``(first, last)`` line index of the block, ``None`` if there is none; raise if it is damaged."""
    begins = [i for i, line in enumerate(lines) if _BEGIN.match(_strip_eol(line))]
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
    """Raise ``EnvFileError`` if ``data`` has a damaged or doubled portalloc block."""
    _block_span(data.splitlines(keepends=True), where)


def _line_list(indexes: list[int]) -> str:
    return ", ".join(str(i + 1) for i in sorted(indexes))


def _line_ending(data: bytes) -> bytes:
    first = data.find(b"\n")
    return b"\r\n" if first > 0 and data[first - 1 : first] == b"\r" else b"\n"


def update_block(data: bytes, label: str, variables: Mapping[str, str], where: str = ".env") -> bytes:
    """``data`` with the portalloc block for ``label`` set to ``variables`` (added at the end if absent).

    Every line outside the block is kept byte for byte. ``where`` names the file in errors.
    """
    lines = data.splitlines(keepends=True)
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
        return b"".join([*lines[:first], *block, *lines[last + 1 :]])
    if data and not data.endswith((b"\n", b"\r")):
        data += eol  # the last line needs its end before the block can start
    return data + b"".join(block)


def block_label(data: bytes) -> str | None:
    """The label (``model/app_num``) of the file's portalloc block, or ``None`` if it has no intact one."""
    lines = data.splitlines(keepends=True)
    try:
        span = _block_span(lines, ".env")
    except EnvFileError:
        return None
    if span is None:
        return None
    match = _BEGIN.match(_strip_eol(lines[span[0]]))
    label = match.group("label") if match else None
    return label.decode("utf-8", "replace") if label is not None else None


def assignments(data: bytes, *, outside_block: bool = False) -> dict[str, tuple[int, str]]:
    """``{name: (line number, value)}`` of the ``NAME=value`` lines (the last one wins, as loaders do).

    Quotes around a value are removed; ``outside_block`` skips the portalloc block.
    A damaged block is read as ordinary lines.
    """
    lines = data.splitlines()
    try:
        span = _block_span(lines, ".env") if outside_block else None
    except EnvFileError:
        span = None
    found: dict[str, tuple[int, str]] = {}
    for index, line in enumerate(lines):
        if span is not None and span[0] <= index <= span[1]:
            continue
        match = _ASSIGNMENT.match(line)
        if match is None:
            continue
        value = match.group("value").strip()
        quote = value[:1]
        if quote in (b"'", b'"') and value.find(quote, 1) > 0:
            value = value[1 : value.find(quote, 1)]
        elif b" #" in value:
            value = value.split(b" #", 1)[0].rstrip()  # an inline comment after an unquoted value
        found[match.group("name").decode("ascii")] = (index + 1, value.decode("utf-8", "replace"))
    return found
