"""The shape of every report, one pydantic schema each, used by both faces.

The CLI's ``--json`` is a schema's dump (``dump_json``) and the HTTP route returns the
same schema as its response model, so ``portalloc stats --json`` and ``GET /v1/stats``
cannot drift apart: ``tests/test_reports.py`` runs both on one ledger for each report.

- ``list`` and ``get``: ``UsedPair`` (``model``, ``app_num``, ``backend``, ``frontend``,
  ``worktree``: the linked worktree whose own pair it is under ``worktrees: separate``,
  else ``null``); ``get``'s fast path prints it without pydantic (``cli/output.py:
  pair_json``, tested against this schema's dump). Ledger rows as such (``list
  --committed``, ``release``, ``export``) are ``Allocation``.
- ``check``: ``CheckReport`` (``ok`` and one ``LedgerCheck`` per ledger; HTTP serves one ledger).
- ``stats``: ``StatsReport``; ``status``: ``StatusReport``; ``policy``: ``PolicyReport``.
- ``host`` (the machine's ledgers and leases) lands here as its own schema when the host
  lease store does.

Each ``…_report`` function builds its report from what the service returns; none reads
a file or the machine itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from portalloc.core import audit, metrics, policyrules
from portalloc.core.keys import Claim
from portalloc.core.models import Allocation, Ledger, PortPolicy
from portalloc.core.worktreepair import worktree_of
from portalloc.machine.live import PairReport, PortReport

# --- get, list: pairs as a work tree uses them ----------------------------------------


class UsedPair(BaseModel):
    """A pair as this work tree uses it: the ledger's (``worktree`` null) or a linked worktree's own."""

    model: str
    app_num: int
    backend: int
    frontend: int
    worktree: str | None


def used_pair(pair: Allocation) -> UsedPair:
    """``pair`` (a ledger row, or a ``WorktreePair``) as ``get --json`` and ``list --json`` print it."""
    return UsedPair(
        model=pair.model, app_num=pair.app_num, backend=pair.backend, frontend=pair.frontend, worktree=worktree_of(pair)
    )


# --- check --------------------------------------------------------------------------


class ClaimReport(BaseModel):
    """One key holding a conflicted port (``core.keys.Claim``); ``role`` is ``None`` for a key listed twice."""

    model: str
    app_num: int
    role: Literal["backend", "frontend"] | None

    @classmethod
    def of(cls, claim: Claim) -> ClaimReport:
        """The report of one key's claim on a port (a conflict's, or a ``compose-check`` finding's)."""
        return cls(model=claim.model, app_num=claim.app_num, role=claim.role)


class ConflictReport(BaseModel):
    """A port held more than once (``port`` set) or a key that appears more than once (``port`` null)."""

    port: int | None
    holders: list[ClaimReport]

    @classmethod
    def of(cls, conflict: audit.Conflict) -> ConflictReport:
        """The report of one conflict ``audit.find_conflicts`` found."""
        return cls(port=conflict.port, holders=[ClaimReport.of(claim) for claim in conflict.holders])


class LedgerCheck(BaseModel):
    """What ``check`` found in one ledger; ``valid`` false (and ``allocations`` null) when it could not be read."""

    ledger: str
    ok: bool
    valid: bool
    allocations: int | None
    conflicts: list[ConflictReport]
    live_problems: list[str]


class CheckReport(BaseModel):
    """``check --json``: ``ok`` when every ledger is; ``GET /v1/check`` is the ``LedgerCheck`` of its one ledger."""

    ok: bool
    ledgers: list[LedgerCheck]


def ledger_check(
    path: Path,
    allocations: int | None,
    conflicts: Sequence[audit.Conflict] = (),
    live_problems: Sequence[str] = (),
) -> LedgerCheck:
    """The check of one ledger (``allocations`` ``None``: the ledger could not be read, so it is not valid)."""
    valid = allocations is not None
    return LedgerCheck(
        ledger=str(path),
        ok=valid and not conflicts and not live_problems,
        valid=valid,
        allocations=allocations,
        conflicts=[ConflictReport.of(conflict) for conflict in conflicts],
        live_problems=list(live_problems),
    )


# --- stats --------------------------------------------------------------------------


class RangeStats(BaseModel):
    """How full one range is: ``shared`` (``model`` null) or a model's ``pool``."""

    range: Literal["shared", "pool"]
    model: str | None
    allocations: int
    capacity: int
    free_pairs: int
    largest_free_run: int
    utilisation: float


class ModelStats(BaseModel):
    """One model's allocations and the room its next apps have; ``pool`` says whether it has one."""

    model: str
    pool: bool
    allocations: int
    capacity: int
    free_pairs: int
    largest_free_run: int
    utilisation: float


class _StatsHead(BaseModel):
    """The keys ``StatsReport`` starts with, before ``Usage``'s counts: a base of its own, so they come first.

    ``worktree`` is the linked worktree this is (``worktrees: separate``) and ``worktree_pairs`` how many
    pairs of its own it holds beside the ledger's (null and 0 elsewhere).
    """

    ledger: str
    worktree: str | None
    worktree_pairs: int


class StatsReport(audit.Usage, _StatsHead):
    """``stats --json`` and ``GET /v1/stats``: counts, the policy, and each range's and model's figures."""

    # The counts are core.audit.Usage's fields, inherited, so the two cannot drift. pydantic
    # puts the fields of the bases last to first: _StatsHead's, then the counts, then the
    # fields below: the order of the JSON's keys, which tests/test_reports.py pins.
    reserved_ports: int
    policy: PortPolicy
    ranges: list[RangeStats]
    per_model: list[ModelStats]


def stats_report(
    path: Path,
    ledger: Ledger,
    unusable: frozenset[int] = frozenset(),
    worktree: Path | None = None,
    worktree_pairs: int = 0,
) -> StatsReport:
    """How full ``ledger`` (read from ``path``) is, overall, per range and per model.

    ``unusable``: the ports this machine cannot hand out (``PortAllocationService.unusable_here``);
    the ``*_here`` figures and the per-range and per-model rows leave their pairs out.
    ``worktree`` and ``worktree_pairs``: the linked worktree and how many pairs of its own it holds.
    """
    ranges = metrics.range_usage(ledger, unusable)
    return StatsReport(
        ledger=str(path),
        worktree=None if worktree is None else str(worktree),
        worktree_pairs=worktree_pairs,
        **audit.usage(ledger, unusable).model_dump(),
        reserved_ports=len(ledger.policy.reserved_ports()),
        policy=ledger.policy,
        ranges=[
            RangeStats(
                range="shared" if r.pool is None else "pool",
                model=r.pool.model if r.pool else None,
                allocations=r.allocations,
                capacity=r.capacity,
                free_pairs=r.free,
                largest_free_run=r.largest_free_run,
                utilisation=round(r.utilisation, 4),
            )
            for r in ranges
        ],
        per_model=[
            ModelStats(
                model=m.model,
                pool=m.pool is not None,
                allocations=m.allocations,
                capacity=m.capacity,
                free_pairs=m.free,
                largest_free_run=m.largest_free_run,
                utilisation=round(m.utilisation, 4),
            )
            for m in metrics.model_usage(ledger, ranges)
        ],
    )


# --- status -------------------------------------------------------------------------


class ProcessReport(BaseModel):
    """A process that holds a port (``machine.probe.ListeningProcess``)."""

    pid: int
    name: str


class LivePort(BaseModel):
    """One port as this machine sees it now."""

    state: str
    own: bool
    held: bool
    holders: list[ProcessReport]

    @classmethod
    def of(cls, report: PortReport) -> LivePort:
        """The live view of one port ``machine.live`` inspected."""
        holders = [ProcessReport(pid=h.pid, name=h.name) for h in report.holders]
        return cls(state=report.state.value, own=report.own, held=report.held, holders=holders)


class LivePair(BaseModel):
    """The backend and frontend of one allocation, live."""

    backend: LivePort
    frontend: LivePort


class LiveAllocation(BaseModel):
    """An allocation and what this machine does with its ports."""

    model: str
    app_num: int
    backend: int
    frontend: int
    live: LivePair


class Finding(BaseModel):
    """A live problem with one port of one allocation."""

    model: str
    app_num: int
    role: str
    port: int
    message: str


class StatusReport(BaseModel):
    """``status --json`` and ``GET /v1/status``: each allocation's ports now, and what is wrong with them.

    ``worktree``: the linked worktree whose own pairs these are where it has them (``worktrees: separate``).
    """

    ledger: str
    worktree: str | None
    allocations: list[LiveAllocation]
    findings: list[Finding]


def status_report(
    path: Path,
    pairs: Sequence[PairReport],
    shared: Sequence[tuple[Allocation, int, str]] = (),
    worktree: Path | None = None,
) -> StatusReport:
    """The status of the allocations ``machine.live.inspect`` looked at, in order; ``shared``: the ports
    another key has leased on this machine (``PortAllocationService.shared_here``), found after the live ones;
    ``worktree``: the linked worktree whose own pairs these are, if any."""
    return StatusReport(
        ledger=str(path),
        worktree=None if worktree is None else str(worktree),
        allocations=[
            LiveAllocation(
                model=pair.model,
                app_num=pair.app_num,
                backend=pair.backend.port,
                frontend=pair.frontend.port,
                live=LivePair(backend=LivePort.of(pair.backend), frontend=LivePort.of(pair.frontend)),
            )
            for pair in pairs
        ],
        findings=[
            Finding(model=port.model, app_num=port.app_num, role=port.role, port=port.port, message=problem)
            for pair in pairs
            for port in pair.ports
            for problem in port.problems()
        ]
        + [
            Finding(model=a.model, app_num=a.app_num, role=_role(a, port), port=port, message=message)
            for a, port, message in shared
        ],
    )


def _role(allocation: Allocation, port: int) -> str:
    return "backend" if port == allocation.backend else "frontend"


# --- policy -------------------------------------------------------------------------


class SkippedPair(BaseModel):
    """A pair in range that is never handed out, and why."""

    backend: int
    frontend: int
    reason: str


class PolicyReport(PortPolicy):  # type: ignore[metaclass]  # PortPolicy's metaclass is pydantic's, which mypy cannot see
    """``policy --json`` and ``GET /v1/policy``: the policy's fields, then what it gives."""

    pairs: int
    usable_pairs: int
    usable_here: int
    skipped: list[SkippedPair]

    def usable_here_note(self) -> str:
        """``, 2,766 usable on this machine`` when this machine cannot hand out every usable pair, else nothing."""
        if self.usable_here == self.usable_pairs:
            return ""
        return f", {self.usable_here:,} usable on this machine"


def policy_report(policy: PortPolicy, unusable: frozenset[int] = frozenset()) -> PolicyReport:
    """The policy and what it gives: pairs in range, usable pairs (in the policy, and on this machine
    without the ports in ``unusable``), and every pair skipped and why."""
    return PolicyReport(
        **policy.model_dump(),
        pairs=policy.pair_count,
        usable_pairs=policyrules.usable_pairs(policy),
        usable_here=policyrules.usable_pairs(policy, unusable),
        skipped=[SkippedPair(backend=b, frontend=f, reason=why) for b, f, why in policyrules.skipped_pairs(policy)],
    )


# --- output -------------------------------------------------------------------------


def dump_json(report: BaseModel | Sequence[BaseModel]) -> str:
    """A report (or a list of them) as the CLI prints it: indented, non-ASCII kept, keys in schema order."""
    if isinstance(report, BaseModel):
        value: object = report.model_dump(mode="json")
    else:
        value = [each.model_dump(mode="json") for each in report]
    return json.dumps(value, ensure_ascii=False, indent=2)


__all__ = [
    "Allocation",
    "CheckReport",
    "ClaimReport",
    "ConflictReport",
    "Finding",
    "LedgerCheck",
    "LiveAllocation",
    "LivePair",
    "LivePort",
    "ModelStats",
    "PolicyReport",
    "ProcessReport",
    "RangeStats",
    "SkippedPair",
    "StatsReport",
    "StatusReport",
    "UsedPair",
    "dump_json",
    "ledger_check",
    "policy_report",
    "stats_report",
    "status_report",
    "used_pair",
]
