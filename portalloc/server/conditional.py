"""Entity tags and preconditions (RFC 9110 §8.8.3 and §13): "allocate only if new", "release only what I saw".

An allocation's ``ETag`` is a hash of its own row (model, app number, backend,
frontend), so a write to another key leaves it valid and a key released and allocated
again on another pair gets a new one. The list's ``ETag`` is a hash of the rows it
holds. ``If-Match`` compares strongly (a weak tag never matches), ``If-None-Match``
weakly, as the RFC says; ``*`` means "the key has a pair".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from portalloc.core.models import Allocation
from portalloc.errors import PreconditionFailed


def _tag(text: str) -> str:
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:24] + '"'


def etag_of(allocation: Allocation) -> str:
    """The strong ``ETag`` of one allocation: a hash of its row."""
    return _tag(allocation.model_dump_json())


def list_etag(allocations: Iterable[Allocation]) -> str:
    """The strong ``ETag`` of a list of allocations: a hash of its rows, in order."""
    return _tag("\n".join(allocation.model_dump_json() for allocation in allocations))


def _tags(header: str) -> list[str]:
    # Entity tags never hold a comma (RFC 9110 §8.8.3: etagc excludes it), so splitting on it is exact.
    return [part.strip() for part in header.split(",") if part.strip()]


def if_match_holds(header: str | None, current: Allocation | None) -> bool:
    """Whether ``If-Match: header`` holds for a key whose pair is ``current`` (strong comparison)."""
    if header is None:
        return True
    if current is None:
        return False
    tags = _tags(header)
    return "*" in tags or etag_of(current) in tags


def if_none_match_holds(header: str | None, current: Allocation | None) -> bool:
    """Whether ``If-None-Match: header`` holds for a key whose pair is ``current`` (weak comparison)."""
    if header is None or current is None:
        return True
    tags = [tag.removeprefix("W/") for tag in _tags(header)]
    return "*" not in tags and etag_of(current) not in tags


def not_modified(header: str | None, etag: str) -> bool:
    """Whether a ``GET`` with ``If-None-Match: header`` may be answered 304 for a representation tagged ``etag``."""
    if header is None:
        return False
    tags = [tag.removeprefix("W/") for tag in _tags(header)]
    return "*" in tags or etag in tags


def refuse(key: tuple[str, int], header: str, current: Allocation | None) -> PreconditionFailed:
    """The 412 for a request on ``key`` whose ``header`` condition does not hold."""
    now = f"holds {current.backend}/{current.frontend}" if current else "has no pair"
    return PreconditionFailed(f"{key[0]}/{key[1]} {now}, so the condition {header} does not hold; nothing changed")
