"""JSON parsing for the files portalloc reads: the ledger and ``port_config.json``.

``json.loads`` silently keeps the last of two equal names in an object (a careless
merge can produce exactly that), and fails in several ways that are not all
``JSONDecodeError`` (a 5,000-digit number, 100,000 nested brackets). ``parse_json``
refuses duplicate names and turns every failure into one ``ValueError`` whose message
reads after "<path> is ".
"""

from __future__ import annotations

import json
from typing import Any


def reject_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads`` that refuses a name given twice in one object."""
    result = dict(pairs)
    if len(result) != len(pairs):
        names = [name for name, _ in pairs]
        duplicate = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"the name {duplicate!r} appears twice in one JSON object")
    return result


def parse_json(text: str) -> Any:
    """The parsed ``text``; raise ``ValueError("not valid JSON: …")`` for anything that is not plain JSON."""
    try:
        return json.loads(text, object_pairs_hook=reject_duplicate_names)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None
    except ValueError as error:  # a repeated name, or a number too long to convert
        raise ValueError(f"not valid JSON: {error}") from None
