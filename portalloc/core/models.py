"""The data: port policy, one allocation, the ledger. Pydantic v2 models, no I/O."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
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

from portalloc.core.derived import (
    Derived,
    LedgerMethods,
    PolicyMethods,
    PoolMethods,
    RowMethods,
    ports_of_ranges,
)
from portalloc.core.derived import describe_ranges as describe_ranges  # where the commands have always found it
from portalloc.core.keys import check_app_num, check_model_name
from portalloc.core.limits import LATEST_LEDGER_VERSION, LEDGER_VERSION, MAX_PORT, MIN_PORT
from portalloc.core.pairs import merge_ranges
from portalloc.core.validation import ApiErrors, describe_validation_error
from portalloc.errors import PolicyRefused

Port = Annotated[int, Field(ge=MIN_PORT, le=MAX_PORT)]
ModelName = Annotated[str, AfterValidator(check_model_name)]
AppNum = Annotated[int, AfterValidator(check_app_num)]

_FROZEN_STRICT = ConfigDict(strict=True, frozen=True, extra="forbid", defer_build=True)

#: ``[low, high]``, both included: one reserved port is ``[6379, 6379]``.
PortRange = Annotated[list[Port], Field(min_length=2, max_length=2)]


class Pool(BaseModel, PoolMethods, metaclass=ApiErrors):
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


class PortPolicy(BaseModel, PolicyMethods["Pool"], metaclass=ApiErrors):
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

    @cached_property
    def _reserved_ports(self) -> frozenset[int]:
        return ports_of_ranges(self.reserved)


class Allocation(BaseModel, RowMethods, metaclass=ApiErrors):
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


class Ledger(BaseModel, LedgerMethods["Allocation"]):
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
    _cache: Derived[Allocation] = PrivateAttr(default_factory=Derived)

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

    def _sorted_ledger(self, ordered: list[Allocation]) -> Ledger:
        ledger = Ledger.model_construct(version=self.version, policy=self.policy, allocations=ordered)
        ledger._derived().is_sorted = True
        return ledger

    def new_row(self, model: str, app_num: int, backend: int, frontend: int) -> Allocation:
        """An ``Allocation`` of values already checked (no validator runs: the allocator chose them)."""
        return Allocation.model_construct(model=model, app_num=app_num, backend=backend, frontend=frontend)


def build_policy(fields: Mapping[str, object]) -> PortPolicy:
    """A ``PortPolicy`` from its fields; ``PolicyRefused`` saying what is wrong if they are not one."""
    try:
        return PortPolicy.model_validate(dict(fields))
    except ValidationError as error:
        raise PolicyRefused(f"invalid policy: {describe_validation_error(error)}") from None
