"""The pair sequence's arithmetic on plain integers: how many pairs a policy holds, reserved ranges spelled one way.

Pydantic-free, so that the models (``PortPolicy``) and the codec's fast reader, which
checks a policy without them, share one definition of each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def pair_count(backend_start: int, frontend_start: int, step: int, max_port: int) -> int:
    """How many pairs lie in range: backends below ``frontend_start``, frontends at most ``max_port``."""
    backend_room = -(-(frontend_start - backend_start) // step)
    frontend_room = (max_port - frontend_start) // step + 1
    return min(backend_room, frontend_room)


def merge_ranges(ranges: Iterable[Sequence[int]]) -> list[list[int]]:
    """``ranges`` as the policy stores them: sorted, overlapping or touching ones joined."""
    merged: list[list[int]] = []
    for low, high in sorted((min(r), max(r)) for r in ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged
