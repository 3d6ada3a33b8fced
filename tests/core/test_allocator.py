"""The pure allocator: the sequence, gap filling, bad ports, pre-configured pairs, reserved ports, pools, releases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from portalloc.core import allocator
from portalloc.core.allocator import assign_many, release
from portalloc.core.audit import find_conflicts
from portalloc.core.models import Allocation, Ledger, Pool, PortPolicy, merge_ranges
from portalloc.core.policymoves import change_policy, policy_refusals
from portalloc.core.policyrules import BAD_PORTS, usable_pairs
from portalloc.errors import InvalidKey, NoFreePair, PolicyRefused
from tests.testing.core import assign


def ports_of(ledger: Ledger) -> list[int]:
    return [port for a in ledger.allocations for port in a.ports]


def test_seed_story_three_models_get_three_pairs() -> None:
    ledger, assignments = assign_many(Ledger(), [("model_a", 1), ("model_b", 1), ("model_c", 1)])
    assert [a.allocation.ports for a in assignments] == [(5001, 8001), (5003, 8003), (5005, 8005)]
    assert all(a.created for a in assignments)
    assert find_conflicts(ledger.allocations) == []


def test_existing_key_gets_the_same_pair_and_no_new_ledger() -> None:
    ledger, first = assign(Ledger(), "model_a", 1)
    again, second = assign(ledger, "model_a", 1)
    assert again is ledger
    assert second.allocation == first.allocation
    assert not second.created


def test_released_pair_is_reused_lowest_first() -> None:
    ledger, _ = assign_many(Ledger(), [("m", n) for n in range(1, 5)])
    ledger, removed = release(ledger, "m", 2)
    assert [a.ports for a in removed] == [(5003, 8003)]
    ledger, _ = release(ledger, "m", 3)
    ledger, assignment = assign(ledger, "n", 1)
    assert assignment.allocation.ports == (5003, 8003)
    ledger, assignment = assign(ledger, "n", 2)
    assert assignment.allocation.ports == (5005, 8005)


def test_release_of_unknown_key_returns_the_same_ledger() -> None:
    ledger, _ = assign(Ledger(), "m", 1)
    same, removed = release(ledger, "m", 2)
    assert same is ledger and removed == []


def test_default_sequence_skips_exactly_the_browsers_bad_backend_ports() -> None:
    policy = PortPolicy()
    skipped = [policy.pair(k)[0] for k in range(policy.pair_count) if set(policy.pair(k)) & BAD_PORTS]
    assert skipped == [5061, 6665, 6667, 6669, 6679, 6697]
    _ledger, assignments = assign_many(Ledger(), [("m", n) for n in range(1, 41)])
    backends = [a.allocation.backend for a in assignments]
    assert 5061 not in backends
    assert backends[29:31] == [5059, 5063]


def test_bad_port_skip_is_a_policy_setting() -> None:
    ledger = Ledger(policy=PortPolicy(backend_start=5061, frontend_start=8001, skip_bad_ports=False))
    _, assignment = assign(ledger, "m", 1)
    assert assignment.allocation.ports == (5061, 8001)
    ledger = Ledger(policy=PortPolicy(backend_start=5061, frontend_start=8001))
    _, assignment = assign(ledger, "m", 1)
    assert assignment.allocation.ports == (5063, 8003)


def test_beyond_capacity_raises_and_never_reuses_a_frontend_port() -> None:
    """The old design's fault: past 1,500 apps the backend sequence reached 8001 and double-booked."""
    ledger = Ledger()
    ledger, _ = assign_many(ledger, [("model", n) for n in range(1, 1495)])
    assert len(ledger.allocations) == 1494
    ports = ports_of(ledger)
    assert len(ports) == len(set(ports))
    assert max(a.backend for a in ledger.allocations) < 8001
    for n in range(1495, 1600):
        with pytest.raises(NoFreePair, match=r"none of the 1,494 pairs"):
            assign(ledger, "model", n)
    with pytest.raises(NoFreePair, match="backend 5001"):
        assign(ledger, "other", 1)


def test_batch_that_overflows_changes_nothing() -> None:
    ledger = Ledger(policy=PortPolicy(backend_start=5001, frontend_start=5005, max_port=5010))
    with pytest.raises(NoFreePair):
        assign_many(ledger, [("m", 1), ("m", 2), ("m", 3)])
    assert ledger.allocations == []


def test_taken_ports_are_skipped() -> None:
    _, assignment = assign(Ledger(), "m", 1, taken={5001})
    assert assignment.allocation.ports == (5003, 8003)
    _, assignment = assign(Ledger(), "m", 1, taken={8003, 8001})
    assert assignment.allocation.ports == (5005, 8005)


def test_a_port_held_in_the_other_role_is_skipped() -> None:
    # A pre-configured frontend on 5003 blocks the backend sequence there too.
    odd = Allocation(model="pre", app_num=1, backend=9500, frontend=5003)
    ledger = Ledger().with_allocations([odd])
    _, assignments = assign_many(ledger, [("m", 1), ("m", 2)])
    assert [a.allocation.ports for a in assignments] == [(5001, 8001), (5005, 8005)]


def test_preferred_pair_wins_when_free() -> None:
    preferred = {("m", 3): (6001, 9001)}
    _ledger, assignments = assign_many(Ledger(), [("m", 3)], preferred=preferred)
    assert assignments[0].allocation.ports == (6001, 9001)
    assert assignments[0].note is None


def test_preferred_pair_is_reserved_from_other_keys_until_used() -> None:
    preferred = {("m", 2): (5001, 8001)}
    _ledger, assignments = assign_many(Ledger(), [("m", 1), ("m", 2)], preferred=preferred)
    assert [a.allocation.ports for a in assignments] == [(5003, 8003), (5001, 8001)]


def test_preferred_pair_that_is_taken_falls_back_with_a_note() -> None:
    ledger, _ = assign(Ledger(), "x", 1)  # holds 5001/8001
    ledger, assignment = assign(ledger, "m", 1, preferred=(5001, 9001))
    assert assignment.allocation.ports == (5003, 8003)
    assert assignment.note is not None
    assert "5001/9001" in assignment.note and "5001" in assignment.note and "5003/8003" in assignment.note


def test_invalid_keys_are_rejected() -> None:
    for model, app_num in [("", 1), ("   ", 1), ("m\n", 1), ("m", 0), ("m", -1), ("x" * 201, 1)]:
        with pytest.raises(InvalidKey):
            assign(Ledger(), model, app_num)


# --- properties --------------------------------------------------------------------------

SMALL_POLICY = PortPolicy(backend_start=6001, frontend_start=6041, step=2, max_port=6100)  # 20 pairs incl. bad ones
keys = st.tuples(st.sampled_from(["a", "b", "c", "model/x", "ü"]), st.integers(min_value=1, max_value=6))


def lowest_free(ledger: Ledger, taken: frozenset[int] = frozenset()) -> tuple[int, int] | None:
    """The rule of DESIGN.md, written the slow obvious way."""
    used = {p for a in ledger.allocations for p in a.ports} | taken
    policy = ledger.policy
    for k in range(policy.pair_count):
        pair = policy.pair(k)
        if not (set(pair) & used) and not (policy.skip_bad_ports and set(pair) & BAD_PORTS):
            return pair
    return None


class AllocatorMachine(RuleBasedStateMachine):
    """Any sequence of get/release keeps ports unique, keys stable, ports in policy, lowest pair chosen."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(policy=SMALL_POLICY)
        self.known: dict[tuple[str, int], tuple[int, int]] = {}

    @rule(key=keys, taken=st.frozensets(st.integers(min_value=6001, max_value=6100), max_size=4))
    def get(self, key: tuple[str, int], taken: frozenset[int]) -> None:
        expected = self.known.get(key) or lowest_free(self.ledger, taken)
        if expected is None:
            with pytest.raises(NoFreePair):
                assign(self.ledger, *key, taken=taken)
            return
        self.ledger, assignment = assign(self.ledger, *key, taken=taken)
        assert assignment.allocation.ports == expected
        self.known[key] = expected

    @rule(key=keys)
    def release(self, key: tuple[str, int]) -> None:
        self.ledger, removed = release(self.ledger, *key)
        assert [a.ports for a in removed] == ([self.known.pop(key)] if key in self.known else [])

    @invariant()
    def ports_unique_in_policy_and_stable(self) -> None:
        ports = ports_of(self.ledger)
        assert len(ports) == len(set(ports))
        policy = self.ledger.policy
        for a in self.ledger.allocations:
            assert policy.backend_start <= a.backend < policy.frontend_start <= a.frontend <= policy.max_port
            assert (a.backend - policy.backend_start) % policy.step == 0
            assert a.frontend - a.backend == policy.frontend_start - policy.backend_start
            assert not set(a.ports) & BAD_PORTS
        assert {a.key: a.ports for a in self.ledger.allocations} == self.known
        assert [a.key for a in self.ledger.allocations] == sorted(self.known)


TestAllocatorMachine = AllocatorMachine.TestCase
TestAllocatorMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


@settings(max_examples=100, deadline=None)
@given(st.lists(keys, max_size=30))
def test_batch_equals_one_at_a_time(batch: list[tuple[str, int]]) -> None:
    one_by_one = Ledger(policy=SMALL_POLICY)
    singles = []
    for key in batch:
        try:
            one_by_one, assignment = assign(one_by_one, *key)
        except NoFreePair:
            with pytest.raises(NoFreePair):
                assign_many(Ledger(policy=SMALL_POLICY), batch)
            return
        singles.append(assignment.allocation)
    batched, assignments = assign_many(Ledger(policy=SMALL_POLICY), batch)
    assert [a.allocation for a in assignments] == singles
    assert batched.allocations == one_by_one.allocations


# --- reserved ports and pools ------------------------------------------------------------


def pooled(*pools: Pool, reserved: list[list[int]] | None = None, **fields: object) -> Ledger:
    return Ledger(policy=PortPolicy(pools=list(pools), reserved=reserved or [], **fields))  # type: ignore[arg-type]


def test_reserved_ports_are_never_handed_out_and_cost_their_pairs() -> None:
    ledger = pooled(reserved=[[5003, 5003], [8007, 8009]])
    _ledger, assignments = assign_many(ledger, [("m", n) for n in range(1, 4)])
    # 5003/8003 (backend reserved), 5007/8007 and 5009/8009 (frontends reserved) are skipped.
    assert [a.allocation.ports for a in assignments] == [(5001, 8001), (5005, 8005), (5011, 8011)]
    assert usable_pairs(ledger.policy) == 1494 - 3


def test_a_pooled_model_takes_its_pool_first_and_others_never_do() -> None:
    ledger = pooled(Pool(model="big", first=10, last=11))
    ledger, assignments = assign_many(ledger, [("small", 1), ("big", 1), ("big", 2), ("big", 3), ("small", 2)])
    ports = [a.allocation.ports for a in assignments]
    assert ports == [(5001, 8001), (5021, 8021), (5023, 8023), (5003, 8003), (5005, 8005)]
    # Releasing a pooled pair does not give it to anyone else.
    ledger, _ = release(ledger, "big", 1)
    _ledger, (again,) = assign_many(ledger, [("small", 3)])
    assert again.allocation.ports == (5007, 8007)


def test_a_full_pool_that_must_not_overflow_fails_with_its_name() -> None:
    ledger = pooled(Pool(model="big", first=0, last=1, overflow="fail"))
    ledger, _ = assign_many(ledger, [("big", 1), ("big", 2)])
    with pytest.raises(NoFreePair, match=r"pool of big \(pairs 0-1\).*overflow is 'fail'"):
        assign(ledger, "big", 3)


def test_a_preferred_pair_in_another_models_pool_or_reserved_is_refused_with_the_reason() -> None:
    ledger = pooled(Pool(model="big", first=0, last=0), reserved=[[5005, 5005]])
    _l, in_pool = assign(ledger, "m", 1, preferred=(5001, 8001))
    assert in_pool.allocation.ports == (5003, 8003)
    assert in_pool.note is not None and "5001 is in the pool of big" in in_pool.note
    _l, on_reserved = assign(ledger, "m", 1, preferred=(5005, 8005))
    assert on_reserved.note is not None and "5005 is reserved" in on_reserved.note
    _l, own = assign(ledger, "big", 1, preferred=(5001, 8001))
    assert own.allocation.ports == (5001, 8001) and own.note is None


@pytest.mark.parametrize(
    "pair",
    [(6000, 9000), (5003, 8003), (6379, 9379), (5001, 8001), (80, 8001)],  # bad port, held, reserved, pool, < 1024
)
def test_a_preferred_pair_is_refused_by_the_rule_import_uses(pair: tuple[int, int]) -> None:
    """``assign_many`` (pre-configured pairs) and ``pair_refusal`` (import, policy, merge) are one rule."""
    ledger = pooled(Pool(model="big", first=0, last=0), reserved=[[6379, 6379]])
    ledger, _ = assign_many(ledger, [("a", 1)])  # 5003/8003: the pool keeps 5001/8001 for big
    why = allocator.pair_refusal(ledger, ("m", 1), pair)
    _l, assignment = assign(ledger, "m", 1, preferred=pair)
    assert why is not None and assignment.allocation.ports != pair
    assert assignment.note == (
        f"pre-configured ports {pair[0]}/{pair[1]} for m/1 cannot be used ({why}); "
        f"allocated {assignment.allocation.backend}/{assignment.allocation.frontend} instead"
    )


def test_a_preferred_pair_may_lie_outside_the_policy_ranges_and_nothing_else() -> None:
    ledger = Ledger()
    assert allocator.pair_refusal(ledger, ("m", 1), (30001, 4001)) is not None  # import: outside the ranges
    assert allocator.pair_refusal(ledger, ("m", 1), (30001, 4001), outside_policy=True) is None
    _l, assignment = assign(ledger, "m", 1, preferred=(30001, 4001))
    assert assignment.allocation.ports == (30001, 4001) and assignment.note is None


@pytest.mark.parametrize(
    ("key", "pair", "why"),
    [
        (("m", 1), (5001, 5001), "backend and frontend are both 5001"),
        (("m", 1), (80, 8001), "port 80 is not from 1024 to 65535"),
        (("m", 1), (4999, 8001), "backend 4999 is outside the policy's backend range 5001-8000"),
        (("m", 1), (5001, 7999), "frontend 7999 is outside the policy's frontend range 8001-65535"),
        (("m", 1), (5061, 8061), "5061 is a port browsers refuse to connect to (the policy skips them)"),
        (("m", 1), (6379, 9379), "port 6379 is reserved"),
        (("m", 1), (5003, 8003), "port 5003 is held by a/1 (backend)"),
        (("m", 1), (5005, 8005), "port 5005 is in the pool of big"),
        (("m", 1), (5001, 11001), None),  # off the sequence but in range: allowed, as pre-configured pairs are
        (("a", 1), (5003, 8003), None),  # the pair it holds
        (("big", 1), (5005, 8005), None),  # its own pool
    ],
)
def test_pair_refusal(key: tuple[str, int], pair: tuple[int, int], why: str | None) -> None:
    ledger = pooled(Pool(model="big", first=2, last=3), reserved=[[6379, 6379]])
    ledger = ledger.with_allocations([Allocation(model="a", app_num=1, backend=5003, frontend=8003)])
    assert allocator.pair_refusal(ledger, key, pair) == why


POOL_POLICY = PortPolicy(backend_start=6001, frontend_start=6041, step=2, max_port=6100)  # 20 pairs
pools_strategy = st.sampled_from(
    [
        [Pool(model="a", first=0, last=3)],
        [Pool(model="b", first=4, last=6, overflow="fail")],
        [Pool(model="a", first=2, last=3, overflow="fail"), Pool(model="c", first=10, last=14)],
        [],
    ]
)
port_ranges = st.tuples(st.integers(6001, 6100), st.integers(0, 3)).map(lambda t: [t[0], min(6100, t[0] + t[1])])


class PlatformMachine(RuleBasedStateMachine):
    """get/release/pool/reserve/policy in any order: ports unique, pools and reserves honoured, nothing orphaned."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(policy=POOL_POLICY)
        self.known: dict[tuple[str, int], tuple[int, int]] = {}

    def _try_policy(self, **fields: object) -> None:
        try:
            policy = PortPolicy.model_validate({**self.ledger.policy.model_dump(), **fields})
        except ValueError:
            return  # not a policy at all (a pool past the end, say): the service refuses it the same way
        before = {a.key: a.ports for a in self.ledger.allocations}
        try:
            self.ledger = change_policy(self.ledger, policy)
        except PolicyRefused as error:
            assert policy_refusals(self.ledger, policy)
            assert str(error).count("/") >= 1
            return
        assert {a.key: a.ports for a in self.ledger.allocations} == before  # nothing moved, nothing dropped

    @rule(key=keys, taken=st.frozensets(st.integers(min_value=6001, max_value=6100), max_size=4))
    def get(self, key: tuple[str, int], taken: frozenset[int]) -> None:
        policy = self.ledger.policy
        try:
            self.ledger, assignment = assign(self.ledger, *key, taken=taken)
        except NoFreePair:
            assert key not in self.known
            return
        pair = assignment.allocation.ports
        if key in self.known:
            assert pair == self.known[key] and not assignment.created
            return
        assert not set(pair) & (taken | policy.reserved_ports() | BAD_PORTS)
        k = policy.index_of(*pair)
        assert k is not None
        pool = next((p for p in policy.pools if p.first <= k <= p.last), None)
        assert pool is None or pool.model == key[0]  # a pooled pair goes to its model alone
        own = policy.pool_of(key[0])
        if own is not None and own.overflow == "fail":
            assert pool is own
        self.known[key] = pair

    @rule(key=keys)
    def release(self, key: tuple[str, int]) -> None:
        self.ledger, removed = release(self.ledger, *key)
        assert [a.ports for a in removed] == ([self.known.pop(key)] if key in self.known else [])

    @rule(pools=pools_strategy)
    def set_pools(self, pools: list[Pool]) -> None:
        self._try_policy(pools=[p.model_dump() for p in pools])

    @rule(ranges=st.lists(port_ranges, max_size=3))
    def reserve(self, ranges: list[list[int]]) -> None:
        self._try_policy(reserved=merge_ranges([*self.ledger.policy.reserved, *ranges]))

    @rule()
    def unreserve_all(self) -> None:
        self._try_policy(reserved=[])

    @rule(backend_start=st.sampled_from([6001, 6003, 6011]), max_port=st.sampled_from([6100, 6080, 6060]))
    def set_range(self, backend_start: int, max_port: int) -> None:
        self._try_policy(backend_start=backend_start, max_port=max_port)

    @invariant()
    def unique_stable_and_inside_the_policy(self) -> None:
        ports = ports_of(self.ledger)
        assert len(ports) == len(set(ports))
        assert {a.key: a.ports for a in self.ledger.allocations} == self.known
        policy = self.ledger.policy
        for a in self.ledger.allocations:
            assert policy.backend_start <= a.backend < policy.frontend_start <= a.frontend <= policy.max_port
            k = policy.index_of(*a.ports)
            pool = next((p for p in policy.pools if k is not None and p.first <= k <= p.last), None)
            assert pool is None or pool.model == a.model  # no app ever sits in another model's pool


TestPlatformMachine = PlatformMachine.TestCase
TestPlatformMachine.settings = settings(max_examples=120, stateful_step_count=40, deadline=None)


# --- free_pairs: the pair search in either direction (a linked worktree's own pairs) -------------


def test_free_pairs_from_the_top_skip_the_ledger_taken_bad_reserved_and_other_pools() -> None:
    # Backends 6001..6699 (6665, 6667 and 6669 are bad ports); p's pool is pairs 0-1 (6001, 6003).
    policy = PortPolicy(
        backend_start=6001,
        frontend_start=6701,
        max_port=7500,
        reserved=[[6697, 6697]],
        pools=[Pool(model="p", first=0, last=1)],
    )
    ledger = Ledger(policy=policy, allocations=[Allocation(model="m", app_num=1, backend=6699, frontend=7399)])
    pairs = allocator.free_pairs(ledger, ["m", "m", "p", "p", "p"], taken={7393}, highest_first=True)
    # 6699 is the ledger's, 6697 reserved, 6693's frontend taken: m gets 6695, then 6691.
    assert pairs[:2] == [(6695, 7395), (6691, 7391)]
    assert pairs[2:4] == [(6003, 6703), (6001, 6701)]  # a pooled model: its pool first, from its top
    assert pairs[4] == (6689, 7389)  # the pool is full: overflow into the shared range, still from the top
    assert allocator.free_pairs(ledger, ["m", "p"]) == [(6005, 6705), (6001, 6701)]  # lowest first, as assign_many
    assert ledger.allocations == [Allocation(model="m", app_num=1, backend=6699, frontend=7399)]  # not added


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 29), max_size=25), st.integers(1, 6))
def test_free_pairs_highest_first_is_the_lowest_first_search_turned_around(held: set[int], count: int) -> None:
    policy = PortPolicy(backend_start=20001, frontend_start=20061, max_port=20200)  # 30 pairs
    taken = {port for k in held for port in policy.pair(k)}
    free = [policy.pair(k) for k in range(policy.pair_count) if k not in held]
    if count > len(free):
        with pytest.raises(NoFreePair):
            allocator.free_pairs(Ledger(policy=policy), ["m"] * count, taken, highest_first=True)
        return
    assert allocator.free_pairs(Ledger(policy=policy), ["m"] * count, taken, highest_first=True) == free[::-1][:count]
    assert allocator.free_pairs(Ledger(policy=policy), ["m"] * count, taken) == free[:count]
