"""The data: port policy, one allocation, the ledger. Pydantic v2 models, no I/O."""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from itertools import chain
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from portalloc.core.keys import check_app_num, check_model_name
from portalloc.core.limits import LATEST_LEDGER_VERSION, LEDGER_VERSION, MAX_PORT, MIN_PORT, SEPARATE_WORKTREES_VERSION
from portalloc.core.pairs import merge_ranges, pair_count
from portalloc.core.validation import ApiErrors, describe_validation_error
from portalloc.errors import PolicyRefused

Port = Annotated[int, Field(ge=MIN_PORT, le=MAX_PORT)]
ModelName = Annotated[str, AfterValidator(check_model_name)]
AppNum = Annotated[int, AfterValidator(check_app_num)]

_FROZEN_STRICT = ConfigDict(strict=True, frozen=True, extra="forbid", defer_build=True)

#: ``[low, high]``, both included: one reserved port is ``[6379, 6379]``.
PortRange = Annotated[list[Port], Field(min_length=2, max_length=2)]


def describe_ranges(ranges: Iterable[Sequence[int]]) -> str:
    """``5173, 6379, 9229-9240``: ranges the way a user types them."""
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges) or "none"


class Pool(BaseModel, metaclass=ApiErrors):
    """Pairs ``first``..``last`` (indices into the sequence, both included) that only ``model`` takes.

    When they are all held, ``overflow`` says what the model's next app gets: a pair of
    the shared range (``shared``) or an error (``fail``).
    """

    model_config = _FROZEN_STRICT

    model: ModelName
    first: int = Field(ge=0)
    last: int = Field(ge=0)
    overflow: Literal["shared", "fail"] = "shared"

    @model_validator(mode="after")
    def _not_empty(self) -> Pool:
        if self.last < self.first:
            raise ValueError(f"pool of {self.model}: last pair {self.last} is before first pair {self.first}")
        return self

    @property
    def size(self) -> int:
        """How many pairs the pool spans (bad-port pairs included)."""
        return self.last - self.first + 1

    def describe(self) -> str:
        """``model_a: pairs 0-99 (overflow shared)``."""
        return f"{self.model}: pairs {self.first}-{self.last} (overflow {self.overflow})"


class PortPolicy(BaseModel, metaclass=ApiErrors):
    """Where pairs come from: pair ``k`` is ``(backend_start + k*step, frontend_start + k*step)``.

    Backends stay below ``frontend_start`` and frontends at most ``max_port``, so a port
    can never serve in both roles. The defaults hold 1,500 pairs (5001/8001 … 7999/10999).
    ``skip_bad_ports`` skips pairs that touch a port browsers refuse to connect to.
    ``probe`` lets a new allocation skip ports this machine's OS holds (``portalloc.machine.probe``);
    turn it off for a ledger that must be a pure function of its own contents.
    ``worktrees`` says what a linked git worktree of the ledger's repository uses:
    ``shared``, the ledger's pairs (every worktree alike); ``separate``, pairs of its own
    that only this machine knows (``portalloc.service.worktrees``), the main worktree
    keeping the ledger's. ``reserved`` are port ranges never handed out; ``pools`` give
    models pairs of their own. Each is written only when it differs from its default, so
    older ledgers keep their bytes.
    """

    model_config = _FROZEN_STRICT

    backend_start: Port = 5001
    frontend_start: Port = 8001
    step: int = Field(default=2, ge=1)
    max_port: Port = MAX_PORT
    skip_bad_ports: bool = True
    probe: bool = True
    worktrees: Literal["shared", "separate"] = "shared"
    reserved: list[PortRange] = Field(default_factory=list)
    pools: list[Pool] = Field(default_factory=list)

    @model_validator(mode="after")
    def _holds_a_pair(self) -> PortPolicy:
        if self.frontend_start <= self.backend_start:
            raise ValueError(
                f"frontend_start ({self.frontend_start}) must be above backend_start ({self.backend_start})"
            )
        if self.frontend_start > self.max_port:
            raise ValueError(f"frontend_start ({self.frontend_start}) is above max_port ({self.max_port})")
        # One spelling per set of ports, so equal policies have equal bytes.
        if self.reserved != merge_ranges(self.reserved):
            raise ValueError("reserved port ranges must be [low, high], sorted, apart and not touching")
        previous: Pool | None = None
        for pool in self.pools:
            if pool.last >= self.pair_count:
                raise ValueError(f"pool of {pool.model} ends at pair {pool.last}; the policy has {self.pair_count}")
            if previous is not None and pool.first <= previous.last:
                raise ValueError(f"pools of {previous.model} and {pool.model} overlap or are not sorted by pair")
            previous = pool
        if len({pool.model for pool in self.pools}) < len(self.pools):
            raise ValueError("a model has more than one pool")
        return self

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

    def pool_of(self, model: str) -> Pool | None:
        """``model``'s pool, or ``None``."""
        return next((pool for pool in self.pools if pool.model == model), None)

    def reserved_ports(self) -> frozenset[int]:
        """Every reserved port, one by one (built once per policy: an import asks for each of its rows)."""
        return self._reserved_ports

    @cached_property
    def _reserved_ports(self) -> frozenset[int]:
        return frozenset(port for low, high in self.reserved for port in range(low, high + 1))

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


class Allocation(BaseModel, metaclass=ApiErrors):
    """One ledger row: the pair of ports held by ``(model, app_num)``.

    It unpacks as its ports, ``backend, frontend = pair`` (the fields are
    ``pair.model_dump()``).
    """

    model_config = _FROZEN_STRICT

    model: ModelName
    app_num: AppNum
    backend: Port
    frontend: Port

    @model_validator(mode="after")
    def _two_ports(self) -> Allocation:
        if self.backend == self.frontend:
            raise ValueError(f"backend and frontend are both {self.backend}")
        return self

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

    def __iter__(self) -> Iterator[int]:  # type: ignore[override]
        # What a user of a "pair" expects; pydantic's own iteration (field, value) is not used
        # by portalloc, and model_dump() gives the fields.
        return iter((self.backend, self.frontend))

    def __repr_name__(self) -> str:
        # Users meet this class as ``PortPair``, the API's name for it (``Allocation`` is the
        # ledger's): ``PortPair(model='a', app_num=1, backend=5001, frontend=8001)``.
        return "PortPair"


#: The seed API's name for an allocation: ``PortPair(model, app_num, backend, frontend)``.
PortPair = Allocation


_KEY = operator.attrgetter("model", "app_num")
_BACKEND = operator.attrgetter("backend")
_FRONTEND = operator.attrgetter("frontend")
#: Up to this many new rows are inserted one by one (O(n) each); more are merged by one sort.
_INSERT_LIMIT = 8


class _Derived:
    """What a ledger derives from its allocations, each built on first use.

    Held in a pydantic private attribute (``Ledger._cache``). Never part of a ledger's
    value: any two compare equal, so ``==`` on ledgers compares their fields alone.
    """

    __slots__ = ("allocations", "index", "is_sorted", "used_ports")

    def __init__(self, allocations: list[Allocation] | None = None) -> None:
        self.allocations = allocations
        self.is_sorted: bool | None = None
        self.index: dict[tuple[str, int], Allocation] | None = None
        self.used_ports: frozenset[int] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Derived)

    __hash__ = object.__hash__


class Ledger(BaseModel):
    """The whole file: a version, the policy, and allocations sorted by ``(model, app_num)``.

    ``version`` is the one read; the codec writes the policy's ``ledger_version``, so the
    file's version always follows from its policy.

    A ledger may hold conflicts (two keys on one port, or one key twice) so that
    ``check`` can report what a careless merge produced; writes never add one.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", defer_build=True)

    version: int = LEDGER_VERSION
    policy: PortPolicy = Field(default_factory=PortPolicy)  # a factory: no schema is built at import
    allocations: list[Allocation] = Field(default_factory=list)
    _cache: _Derived = PrivateAttr(default_factory=_Derived)

    @model_validator(mode="before")
    @classmethod
    def _version_of_its_policy(cls, data: Any) -> Any:
        # A ledger built in code (``Ledger(policy=...)``) takes the version its policy needs;
        # a file is read as it says (a missing version is the oldest, as it always was).
        if isinstance(data, dict) and "version" not in data and isinstance(data.get("policy"), PortPolicy):
            return {**data, "version": data["policy"].ledger_version}
        return data

    @model_validator(mode="after")
    def _known_version(self) -> Ledger:
        if self.version > LATEST_LEDGER_VERSION:
            raise ValueError(
                f"ledger version {self.version} was written by a newer portalloc (this one reads versions "
                f"{LEDGER_VERSION} to {LATEST_LEDGER_VERSION}); upgrade portalloc"
            )
        if self.version < LEDGER_VERSION:
            raise ValueError(f"ledger version {self.version} is not supported (versions start at {LEDGER_VERSION})")
        if self.version < self.policy.ledger_version:
            # Written by hand or by a tool that knew no better: an older portalloc would misread it.
            raise ValueError(
                f"a policy with worktrees: {self.policy.worktrees} needs ledger version "
                f"{self.policy.ledger_version}, and this one says {self.version}"
            )
        return self

    def with_allocations(self, allocations: Iterable[Allocation]) -> Ledger:
        """A ledger with the same policy and these (already validated) allocations, sorted."""
        return self._sorted_ledger(sorted(allocations, key=_KEY))

    def with_added(self, added: Sequence[Allocation]) -> Ledger:
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
        return ledger

    def _sorted_ledger(self, ordered: list[Allocation]) -> Ledger:
        ledger = Ledger.model_construct(version=self.version, policy=self.policy, allocations=ordered)
        ledger._derived().is_sorted = True
        return ledger

    def _derived(self) -> _Derived:
        """This ledger's derived data, started afresh when its allocations are not the ones it was built for."""
        derived = self._cache
        if derived.allocations is not self.allocations:  # new, or a model_copy that replaced the allocations
            derived = self._cache = _Derived(self.allocations)
        return derived

    def in_key_order(self) -> list[Allocation]:
        """The allocations sorted by ``(model, app_num)``: the list itself when it already is (as it
        is in every ledger portalloc builds), else a sorted copy (a hand-edited file may not be)."""
        derived = self._derived()
        if derived.is_sorted is None:
            keys = list(map(_KEY, self.allocations))
            derived.is_sorted = all(map(operator.le, keys, keys[1:]))
        return self.allocations if derived.is_sorted else sorted(self.allocations, key=_KEY)

    def find(self, model: str, app_num: int) -> Allocation | None:
        """The allocation of ``(model, app_num)``, or ``None``."""
        derived = self._derived()
        if derived.index is None:
            # First occurrence wins, matching the order a reader of the file sees.
            index: dict[tuple[str, int], Allocation] = {}
            for allocation in self.allocations:
                index.setdefault(allocation.key, allocation)
            derived.index = index
        return derived.index.get((model, app_num))

    @property
    def used_ports(self) -> frozenset[int]:
        """Every port any allocation holds, in either role (built once per ledger)."""
        derived = self._derived()
        if derived.used_ports is None:
            derived.used_ports = frozenset(chain(map(_BACKEND, self.allocations), map(_FRONTEND, self.allocations)))
        return derived.used_ports


def build_policy(fields: Mapping[str, object]) -> PortPolicy:
    """A ``PortPolicy`` from its fields; ``PolicyRefused`` saying what is wrong if they are not one."""
    try:
        return PortPolicy.model_validate(dict(fields))
    except ValidationError as error:
        raise PolicyRefused(f"invalid policy: {describe_validation_error(error)}") from None
