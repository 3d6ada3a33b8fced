"""``WorktreePair``: a linked worktree's own pair is a pair like any other, and says whose it is."""

from __future__ import annotations

from portalloc.core.models import Allocation, PortPair
from portalloc.core.worktreepair import WorktreePair, worktree_of


def test_a_worktree_pair_is_a_pair_that_names_its_worktree() -> None:
    own = WorktreePair(model="m", app_num=1, backend=7999, frontend=10999, worktree="/w/agent-1")
    backend, frontend = own
    assert (backend, frontend) == (7999, 10999) and isinstance(own, PortPair)
    assert repr(own) == "WorktreePair(model='m', app_num=1, backend=7999, frontend=10999, worktree='/w/agent-1')"
    assert own.label() == "m/1 in worktree /w/agent-1"
    assert worktree_of(own) == "/w/agent-1"
    assert worktree_of(Allocation(model="m", app_num=1, backend=5001, frontend=8001)) is None
