"""What a ledger, its policy, its pools and its rows derive from their values: written once, for both representations.

The pydantic models (``core.models``) and the plain classes (``core.plain``) hold the
same values; each inherits its mixin here, so every method the write path calls (the
shapes of ``core.shapes``) has one body. No I/O, no pydantic.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Generic, TypeVar

from portalloc.core.limits import LEDGER_VERSION, SEPARATE_WORKTREES_VERSION
from portalloc.core.pairs import pair_count

if TYPE_CHECKING:
    from typing_extensions import Self

    from portalloc.core.shapes import PoolShape, Row

#: The rows of a ledger: ``Allocation`` in a ``Ledger``, ``PlainAllocation`` in a ``PlainLedger``.
R = TypeVar("R", bound="Row")
#: The pools of a policy: ``Pool`` in a ``PortPolicy``, ``PlainPool`` in a ``PlainPolicy``.
P = TypeVar("P", bound="PoolShape")


def describe_ranges(ranges: Iterable[Sequence[int]]) -> str:
    """``5173, 6379, 9229-9240``: ranges the way a user types them."""
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges) or "none"


def ports_of_ranges(ranges: Iterable[Sequence[int]]) -> frozenset[int]:
    """Every port of ``[low, high]`` ranges, one by one."""
    return frozenset(port for low, high in ranges for port in range(low, high + 1))


class RowMethods:
    """What an allocation derives from ``model``, ``app_num``, ``backend`` and ``frontend``."""

    __slots__ = ()

    if TYPE_CHECKING:
        model: str
        app_num: int
        backend: int
        frontend: int

    @property
    def key(self) -> tuple[str, int]:
        """``(model, app_num)``: what the allocation is for."""
        return self.model, self.app_num

    @property
    def ports(self) -> tuple[int, int]:
        """``(backend, frontend)``."""
        return self.backend, self.frontend

    def label(self) -> str:
        """``model/app_num``, the way messages name an allocation."""
        return f"{self.model}/{self.app_num}"


class PoolMethods:
    """What a pool derives from its fields."""

    __slots__ = ()

    if TYPE_CHECKING:
        model: str
        first: int
        last: int
        overflow: str

    @property
    def size(self) -> int:
        """How many pairs the pool spans (bad-port pairs included)."""
        return self.last - self.first + 1

    def describe(self) -> str:
        """``model_a: pairs 0-99 (overflow shared)``."""
        return f"{self.model}: pairs {self.first}-{self.last} (overflow {self.overflow})"


class PolicyMethods(Generic[P]):
    """What a port policy derives from its fields (``PortPolicy`` says what they mean)."""

    __slots__ = ()

    if TYPE_CHECKING:
        backend_start: int
        frontend_start: int
        step: int
        max_port: int
        skip_bad_ports: bool
        worktrees: str
        reserved: Sequence[Sequence[int]]
        pools: Sequence[P]

        @property
        def _reserved_ports(self) -> frozenset[int]:
            """Every reserved port (each class keeps it once built)."""

    @property
    def ledger_version(self) -> int:
        """The ledger format that can carry this policy: what the file's ``version`` says.

        The lowest that holds it, so a ledger that needs nothing new stays readable by
        older portalloc, and one that does is refused by them rather than misread.
        """
        return SEPARATE_WORKTREES_VERSION if self.worktrees == "separate" else LEDGER_VERSION

    @property
    def separate_worktrees(self) -> bool:
        """Whether each linked worktree gets pairs of its own (``worktrees: separate``)."""
        return self.worktrees == "separate"

    def pool_of(self, model: str) -> P | None:
        """``model``'s pool, or ``None``."""
        return next((pool for pool in self.pools if pool.model == model), None)

    def reserved_ports(self) -> frozenset[int]:
        """Every reserved port, one by one (built once per policy: an import asks for each of its rows)."""
        return self._reserved_ports

    def pairs_with_backends(self, low: int, high: int) -> range:
        """The indices ``k`` of the pairs whose backend lies in ``low``..``high`` (possibly none)."""
        first = max(0, -(-(low - self.backend_start) // self.step))
        last = min(self.pair_count - 1, (high - self.backend_start) // self.step)
        return range(first, last + 1)

    def index_of(self, backend: int, frontend: int) -> int | None:
        """``k`` if ``(backend, frontend)`` is pair ``k`` of the sequence, else ``None``."""
        offset = backend - self.backend_start
        k, rest = divmod(offset, self.step)
        if rest or offset < 0 or k >= self.pair_count or frontend - self.frontend_start != offset:
            return None
        return k

    @property
    def pair_count(self) -> int:
        """How many pairs lie in range (before skipping browsers' bad ports)."""
        return pair_count(self.backend_start, self.frontend_start, self.step, self.max_port)

    def pair(self, k: int) -> tuple[int, int]:
        """The ``k``-th pair of the sequence (``0 <= k < pair_count``)."""
        offset = k * self.step
        return self.backend_start + offset, self.frontend_start + offset

    def describe(self) -> str:
        """One line naming the policy, for error messages (reserved ports and pools too, when there are any)."""
        text = f"backend {self.backend_start}+, frontend {self.frontend_start}+, step {self.step}, max {self.max_port}"
        if not self.skip_bad_ports:
            text += ", bad ports not skipped"
        if self.separate_worktrees:
            text += ", separate worktrees"
        if self.reserved:
            text += f", reserved {describe_ranges(self.reserved)}"
        if self.pools:
            text += ", pools " + "; ".join(pool.describe() for pool in self.pools)
        return text


_KEY = operator.attrgetter("model", "app_num")
_MODEL = operator.attrgetter("model")
_BACKEND = operator.attrgetter("backend")
_FRONTEND = operator.attrgetter("frontend")
#: Up to this many new rows are inserted one by one (O(n) each); more are merged by one sort.
_INSERT_LIMIT = 8


class Derived(Generic[R]):
    """What a ledger derives from its allocations, each built on first use.

    Never part of a ledger's value: any two compare equal, so ``==`` on ledgers
    compares their fields alone.
    """

    __slots__ = ("allocations", "index", "is_sorted", "model_names", "used_ports")

    def __init__(self, allocations: Sequence[R] | None = None) -> None:
        self.allocations = allocations
        self.is_sorted: bool | None = None
        self.index: dict[tuple[str, int], R] | None = None
        self.used_ports: frozenset[int] | None = None
        self.model_names: frozenset[str] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Derived)

    __hash__ = object.__hash__


class LedgerMethods(Generic[R]):
    """What a ledger derives from its allocations, and the ledgers it makes from them.

    A ledger makes ledgers and rows of its own kind (``_sorted_ledger``, ``new_row``):
    the models' give models, the plain one plain ones. (No ``__slots__`` here: ``_derived``
    replaces the ledger's ``_cache``, a slot of the plain ledger and a private attribute of the model.)
    """

    if TYPE_CHECKING:
        version: int
        allocations: Sequence[R]
        _cache: Derived[R]

        def _sorted_ledger(self, ordered: list[R]) -> Self:
            """A ledger with this one's version and policy and ``ordered`` (sorted) as its allocations."""

        def new_row(self, model: str, app_num: int, backend: int, frontend: int) -> R:
            """An allocation of this ledger's kind (values already checked)."""

    def with_allocations(self, allocations: Iterable[R]) -> Self:
        """A ledger with the same policy and these (already validated) allocations, sorted."""
        return self._sorted_ledger(sorted(allocations, key=_KEY))

    def with_added(self, added: Sequence[R]) -> Self:
        """This ledger plus ``added``, allocations of keys it does not hold yet (one each), sorted.

        What ``with_allocations`` gives, for less: a few new rows are inserted in place,
        and a lookup index or used-port set this ledger already built is extended rather
        than rebuilt, so a write after one allocation stays cheap at any ledger size.
        """
        if not added:
            return self
        if self.in_key_order() is self.allocations and len(added) <= _INSERT_LIMIT:
            ordered = list(self.allocations)
            for allocation in added:
                bisect.insort(ordered, allocation, key=_KEY)
        else:
            ordered = sorted([*self.allocations, *added], key=_KEY)
        ledger = self._sorted_ledger(ordered)
        built, derived = self._derived(), ledger._derived()
        # What this ledger already derived is extended, not rebuilt (a write after one allocation stays cheap).
        if built.index is not None:
            index = dict(built.index)
            for allocation in added:
                index.setdefault(allocation.key, allocation)
            derived.index = index
        if built.used_ports is not None:
            derived.used_ports = built.used_ports.union(*(allocation.ports for allocation in added))
        if built.model_names is not None:
            derived.model_names = built.model_names.union(map(_MODEL, added))
        return ledger

    def _derived(self) -> Derived[R]:
        """This ledger's derived data, started afresh when its allocations are not the ones it was built for."""
        derived = self._cache
        if derived.allocations is not self.allocations:  # new, or a model_copy that replaced the allocations
            derived = self._cache = Derived(self.allocations)
        return derived

    def in_key_order(self) -> Sequence[R]:
        """The allocations sorted by ``(model, app_num)``: the list itself when it already is (as it
        is in every ledger portalloc builds), else a sorted copy (a hand-edited file may not be)."""
        derived = self._derived()
        if derived.is_sorted is None:
            keys = list(map(_KEY, self.allocations))
            derived.is_sorted = all(map(operator.le, keys, keys[1:]))
        return self.allocations if derived.is_sorted else sorted(self.allocations, key=_KEY)

    def find(self, model: str, app_num: int) -> R | None:
        """The allocation of ``(model, app_num)``, or ``None``."""
        derived = self._derived()
        if derived.index is None:
            # First occurrence wins, matching the order a reader of the file sees: built from the last row
            # back, each earlier row replaces a later one of its key (at C speed: no Python call per row).
            rows = self.allocations
            derived.index = dict(zip(map(_KEY, reversed(rows)), reversed(rows), strict=True))
        return derived.index.get((model, app_num))

    @property
    def model_names(self) -> frozenset[str]:
        """The models the allocations are for (built once per ledger)."""
        derived = self._derived()
        if derived.model_names is None:
            derived.model_names = frozenset(map(_MODEL, self.allocations))
        return derived.model_names

    @property
    def used_ports(self) -> frozenset[int]:
        """Every port any allocation holds, in either role (built once per ledger)."""
        derived = self._derived()
        if derived.used_ports is None:
            derived.used_ports = frozenset(chain(map(_BACKEND, self.allocations), map(_FRONTEND, self.allocations)))
        return derived.used_ports
