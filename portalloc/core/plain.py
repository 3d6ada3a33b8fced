"""A ledger's values as plain Python: what a command-line write works on, so that it never imports pydantic.

The plain classes hold the same values as the pydantic models (``core.models``) and
inherit the same methods (``core.derived``); ``storage.plainread`` builds them from the
codec's checked reading, so only values the models accept are put in them, and they
are never validated here. Immutable, with ``__slots__``. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from portalloc.core.derived import Derived, LedgerMethods, PolicyMethods, PoolMethods, RowMethods, ports_of_ranges

if TYPE_CHECKING:
    from typing_extensions import Self


#: How a plain value's fields are set, past ``_Frozen.__setattr__``.
_set_field = object.__setattr__


class _Frozen:
    """Fields set once, by ``__init__``; the one attribute a plain ledger may change is its cache."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_cache":
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():
            _set_field(self, name, value)

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names if not name.startswith("_"))
        return f"{type(self).__name__}({fields})"


class PlainAllocation(RowMethods, _Frozen):
    """One ledger row (``Allocation``'s values), for a command-line write."""

    __slots__ = ("app_num", "backend", "frontend", "model")

    model: str
    app_num: int
    backend: int
    frontend: int

    def __init__(self, model: str, app_num: int, backend: int, frontend: int) -> None:
        # Set one by one, not through ``_set``: a command-line write reads every row of the ledger into one.
        _set_field(self, "model", model)
        _set_field(self, "app_num", app_num)
        _set_field(self, "backend", backend)
        _set_field(self, "frontend", frontend)

    def __iter__(self) -> Iterator[int]:
        return iter((self.backend, self.frontend))


class PlainPool(PoolMethods, _Frozen):
    """A model's own pairs (``Pool``'s values)."""

    __slots__ = ("first", "last", "model", "overflow")

    model: str
    first: int
    last: int
    overflow: str

    def __init__(self, model: str, first: int, last: int, overflow: str) -> None:
        self._set(model=model, first=first, last=last, overflow=overflow)


class PlainPolicy(PolicyMethods[PlainPool], _Frozen):
    """A port policy (``PortPolicy``'s values); every field is given (the codec knows the defaults)."""

    __slots__ = (
        "_reserved",
        "backend_start",
        "frontend_start",
        "max_port",
        "pools",
        "probe",
        "reserved",
        "skip_bad_ports",
        "step",
        "worktrees",
    )

    backend_start: int
    frontend_start: int
    step: int
    max_port: int
    skip_bad_ports: bool
    probe: bool
    worktrees: str
    reserved: tuple[tuple[int, int], ...]
    pools: tuple[PlainPool, ...]
    _reserved: list[frozenset[int]]

    def __init__(
        self,
        *,
        backend_start: int,
        frontend_start: int,
        step: int,
        max_port: int,
        skip_bad_ports: bool,
        probe: bool,
        worktrees: str,
        reserved: Iterable[Sequence[int]],
        pools: Iterable[PlainPool],
    ) -> None:
        self._set(
            backend_start=backend_start,
            frontend_start=frontend_start,
            step=step,
            max_port=max_port,
            skip_bad_ports=skip_bad_ports,
            probe=probe,
            worktrees=worktrees,
            reserved=tuple((low, high) for low, high in reserved),
            pools=tuple(pools),
            _reserved=[],
        )

    @property
    def _reserved_ports(self) -> frozenset[int]:
        if not self._reserved:  # built on first use: most writes never ask
            self._reserved.append(ports_of_ranges(self.reserved))
        return self._reserved[0]


class PlainLedger(LedgerMethods[PlainAllocation], _Frozen):
    """A ledger (``Ledger``'s values): what a command-line write reads, changes and writes."""

    __slots__ = ("_cache", "allocations", "policy", "version")

    version: int
    policy: PlainPolicy
    allocations: list[PlainAllocation]
    _cache: Derived[PlainAllocation]

    def __init__(self, version: int, policy: PlainPolicy, allocations: list[PlainAllocation]) -> None:
        self._set(version=version, policy=policy, allocations=allocations, _cache=Derived())

    def _sorted_ledger(self, ordered: list[PlainAllocation]) -> Self:
        ledger = type(self)(self.version, self.policy, ordered)
        ledger._cache.allocations, ledger._cache.is_sorted = ordered, True
        return ledger

    def new_row(self, model: str, app_num: int, backend: int, frontend: int) -> PlainAllocation:
        """A ``PlainAllocation`` (values already checked)."""
        return PlainAllocation(model, app_num, backend, frontend)
