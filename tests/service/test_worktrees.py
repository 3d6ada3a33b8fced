"""``worktrees: separate``: each linked worktree's own pairs, through the service, with real ``git worktree``.

The service runs in-process (the process boundary is not the point here); git, the
worktrees and the host lease store are real.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from portalloc.core.models import Allocation, Pool, PortPolicy
from portalloc.core.worktreepair import WorktreePair, worktree_of
from portalloc.service.facade import PortAllocationService
from tests.gittools import git, new_repo

LEDGER = "portalloc.json"


def service(tree: Path, **options: object) -> PortAllocationService:
    return PortAllocationService(tree / LEDGER, probe=False, **options)  # type: ignore[arg-type]


def repo_with_ledger(path: Path, policy: PortPolicy, keys: list[tuple[str, int]]) -> Path:
    """A repository whose main branch commits a ledger under ``policy`` holding ``keys``."""
    repo = new_repo(path)
    main = service(repo)
    main.create_ledger(policy)
    main.allocate_many(keys)
    git(repo, "add", LEDGER)
    git(repo, "commit", "-q", "-m", "ledger")
    return repo


def add_worktrees(repo: Path, *names: str) -> list[Path]:
    trees = [repo.parent / name for name in names]
    for tree in trees:
        git(repo, "worktree", "add", "-q", str(tree), "-b", tree.name)
    return trees


@pytest.fixture
def four(tmp_path: Path) -> list[Path]:
    """The main worktree and three linked ones of a repository whose ledger says ``worktrees: separate``."""
    repo = repo_with_ledger(tmp_path / "main", PortPolicy(worktrees="separate"), [("model_a", 1), ("model_b", 1)])
    return [repo, *add_worktrees(repo, "wt1", "wt2", "wt3")]


def test_four_worktrees_get_four_pairs_each_stable_the_main_one_the_ledgers(four: list[Path]) -> None:
    committed = {tree: (tree / LEDGER).read_bytes() for tree in four}
    pairs = [service(tree).get_or_allocate_ports("model_a", 1) for tree in four]
    assert [pair.ports for pair in pairs] == [(5001, 8001), (7999, 10999), (7997, 10997), (7995, 10995)]
    assert type(pairs[0]) is Allocation and worktree_of(pairs[0]) is None
    assert [worktree_of(pair) for pair in pairs[1:]] == [str(tree.resolve()) for tree in four[1:]]
    # Stable: again, from a new service (a new process would be the same), in any order.
    for tree, pair in reversed(list(zip(four, pairs, strict=True))):
        assert service(tree).get_or_allocate_ports("model_a", 1) == pair
        assert service(tree).allocate_many([("model_a", 1)]) == [pair]
    # Nothing was written to any copy of the committed ledger.
    assert {tree: (tree / LEDGER).read_bytes() for tree in four} == committed
    assert git(four[1], "diff", "--stat") == ""


def test_reads_never_choose_a_worktree_pair(four: list[Path]) -> None:
    linked = service(four[1])
    assert linked.get_ports("model_a", 1) is None  # the worktree has no pair of its own yet
    assert [worktree_of(pair) for pair in linked.pairs_in_use()] == [None, None]
    assert linked.worktree() == four[1].resolve()
    own = linked.get_or_allocate_ports("model_b", 1)
    assert linked.get_ports("model_b", 1) == own
    assert [pair.ports for pair in linked.pairs_in_use()] == [(5001, 8001), (7999, 10999)]
    assert [pair.ports for pair in linked.get_all_allocations()] == [(5001, 8001), (5003, 8003)]  # the ledger's
    assert service(four[0]).worktree() is None


def test_a_new_key_in_a_linked_worktree_is_committed_there_merges_and_keeps_its_own_pair(four: list[Path]) -> None:
    main, wt1 = four[0], four[1]
    own = service(wt1).get_or_allocate_ports("model_c", 1)
    assert isinstance(own, WorktreePair) and own.ports == (7999, 10999)
    committed = service(wt1).get_all_allocations()
    assert [(a.model, a.ports) for a in committed][-1] == ("model_c", (5005, 8005))  # the team's pair, in its ledger
    git(wt1, "commit", "-q", "-am", "model_c")
    git(main, "merge", "-q", "--no-edit", "wt1")
    assert service(main).get_or_allocate_ports("model_c", 1).ports == (5005, 8005)
    assert service(wt1).get_or_allocate_ports("model_c", 1) == own


def test_a_pulled_row_landing_on_a_worktree_pair_moves_it_and_says_so(
    four: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    main, wt1 = four[0], four[1]
    assert service(wt1).get_or_allocate_ports("model_a", 1).ports == (7999, 10999)
    # On main, someone (another machine, say) commits a row on exactly that pair.
    text = (
        (main / LEDGER)
        .read_text()
        .replace(
            '"frontend": 8003}',
            '"frontend": 8003},\n    {"model": "model_z", "app_num": 1, "backend": 7999, "frontend": 10999}',
        )
    )
    (main / LEDGER).write_text(text)
    git(main, "commit", "-q", "-am", "model_z")
    git(wt1, "merge", "-q", "--no-edit", "main")
    assert service(wt1).get_ports("model_a", 1) is None  # a read does not answer a pair the ledger holds now
    with caplog.at_level(logging.WARNING, logger="portalloc"):
        moved = service(wt1).get_or_allocate_ports("model_a", 1)
    assert moved.ports == (7997, 10997)
    assert "model_a/1 in worktree" in caplog.text and "moved from 7999/10999 to 7997/10997" in caplog.text
    assert service(wt1).get_or_allocate_ports("model_a", 1) == moved  # and it stays there


def test_pools_and_reserved_ports_hold_for_worktree_pairs(tmp_path: Path) -> None:
    policy = PortPolicy(worktrees="separate", reserved=[[7999, 7999]], pools=[Pool(model="pooled", first=0, last=9)])
    repo = repo_with_ledger(tmp_path / "main", policy, [("pooled", 1), ("other", 1)])
    (wt1,) = add_worktrees(repo, "wt1")
    assert service(wt1).get_or_allocate_ports("pooled", 1).ports == (5019, 8019)  # its pool, from the top
    assert service(wt1).get_or_allocate_ports("other", 1).ports == (7997, 10997)  # 7999 is reserved


def test_committed_allocations_avoid_worktree_pairs_on_this_machine(four: list[Path]) -> None:
    narrow = four[0]
    assert service(four[1]).get_or_allocate_ports("model_a", 1).ports == (7999, 10999)
    # A ledger elsewhere on this machine whose sequence reaches 7999: it skips the worktree's pair.
    other = narrow.parent / "other"
    other.mkdir()
    shifted = service(other)
    shifted.create_ledger(PortPolicy(backend_start=10999, frontend_start=30001, max_port=31000))
    assert shifted.get_or_allocate_ports("x", 1).ports == (11001, 30003)


def test_a_removed_worktrees_pairs_are_not_avoided(four: list[Path]) -> None:
    main, wt1, wt2 = four[:3]
    assert service(wt1).get_or_allocate_ports("model_a", 1).ports == (7999, 10999)
    assert service(wt2).get_or_allocate_ports("model_a", 1).ports == (7997, 10997)
    git(main, "worktree", "remove", str(wt1))
    # Gone from the disk: no longer avoided from that moment, so wt3 takes the top pair.
    assert service(four[3]).get_or_allocate_ports("model_a", 1).ports == (7999, 10999)


def test_shared_behaves_as_today(tmp_path: Path) -> None:
    repo = repo_with_ledger(tmp_path / "main", PortPolicy(), [("model_a", 1)])
    (wt1,) = add_worktrees(repo, "wt1")
    before = (wt1 / LEDGER).read_bytes()
    assert before.startswith(b'{\n  "version": 1,\n') and b"worktrees" not in before
    pair = service(wt1).get_or_allocate_ports("model_a", 1)
    assert type(pair) is Allocation and pair.ports == (5001, 8001)
    assert service(wt1).worktree() is None and (wt1 / LEDGER).read_bytes() == before


def test_a_release_in_a_linked_worktree_ends_its_own_pair_too(four: list[Path]) -> None:
    wt1 = four[1]
    assert service(wt1).get_or_allocate_ports("model_b", 1).ports == (7999, 10999)
    assert service(wt1).release_ports("model_b", 1)
    assert service(wt1).worktree_pairs() == []
    # Freed: the next worktree to ask takes the top pair.
    assert service(four[2]).get_or_allocate_ports("model_a", 1).ports == (7999, 10999)


def test_cleanup_in_a_linked_worktree_ends_its_own_pairs_of_the_apps_it_releases(four: list[Path]) -> None:
    wt1 = four[1]
    apps = wt1 / "apps"
    (apps / "model_a" / "app1").mkdir(parents=True)  # model_a/1 has its directory; model_b/1 has none
    assert service(wt1).get_or_allocate_ports("model_b", 1).ports == (7999, 10999)
    released = service(wt1).cleanup_orphaned_allocations(apps)
    assert [pair.key for pair in released] == [("model_b", 1)]
    assert service(wt1).worktree_pairs() == []


def test_with_leases_off_a_linked_worktree_uses_the_ledgers_pair_and_says_why(
    four: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="portalloc"):
        pair = service(four[1], leases=False).get_or_allocate_ports("model_a", 1)
    assert type(pair) is Allocation and pair.ports == (5001, 8001)
    assert "need host leases, which are off" in caplog.text


def _leased_pairs(state: Path, ledger: Path) -> dict[tuple[str, int], tuple[int, int]]:
    from portalloc.machine.identity import identify
    from portalloc.machine.leases import open_store

    store = open_store(state)
    ledger_id = store.known_ledger_id(identify(ledger).key)
    assert ledger_id is not None
    return store.live_pairs(ledger_id)


@pytest.mark.parametrize("separate", [False, True])
def test_a_plain_target_writes_leases_and_answers_what_the_service_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, separate: bool
) -> None:
    """The command line's write of a new key (``LedgerTarget.plain``, no pydantic) against the API's (models):
    the same pairs, the same bytes and the same leases, with ports another ledger leases here to avoid;
    in a linked worktree under ``worktrees: separate``, the same own pairs too."""
    from portalloc.service.target import LedgerTarget
    from portalloc.service.worktrees import pair_in_use

    policy = PortPolicy(worktrees="separate" if separate else "shared", pools=[Pool(model="pooled", first=0, last=1)])
    keys = [("m", 2), ("pooled", 1), ("new_model", 1), ("m", 1), ("pooled", 2), ("pooled", 3)]
    answers, elsewhere = [], set()
    for side in ("plain", "models"):
        state = tmp_path / f"state-{side}"
        monkeypatch.setenv("PORTALLOC_STATE_DIR", str(state))
        repo = repo_with_ledger(tmp_path / side / "repo", policy, [("m", 1)])
        tree = add_worktrees(repo, "agent")[0] if separate else repo
        other = PortAllocationService(tmp_path / f"{side}-other.json", policy=policy, probe=False)
        elsewhere = {port for pair in other.allocate_many([("x", 1), ("x", 2)]) for port in pair}  # leased here
        if side == "plain":
            target = LedgerTarget.plain(
                tree / LEDGER,
                None,
                lock_timeout=5,
                probe=False,
                create_ledger=False,
                leases=True,
                allow_confusable=False,
            )
            found = [pair_in_use(target, *key) for key in keys]
            pairs = [(pair.ports, None if where is None else str(where)) for pair, where in found]
        else:
            used = [service(tree).get_or_allocate_ports(*key) for key in keys]
            pairs = [(pair.ports, worktree_of(pair)) for pair in used]
        answers.append((pairs, (tree / LEDGER).read_bytes(), _leased_pairs(state, tree / LEDGER)))
    (pairs, _, _), _ = answers
    assert answers[0][1:] == answers[1][1:]
    # The same pairs, but for the worktree's path (each side has its own repository).
    assert [ports for ports, _ in pairs] == [ports for ports, _ in answers[1][0]]
    assert [where is not None for _, where in pairs] == [separate] * len(keys)
    assert not elsewhere & {port for ports, _ in pairs for port in ports}
