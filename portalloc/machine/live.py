"""The ledger's ports as this machine sees them now: listening, free, reserved, and held by whom.

A listening port is *the app's own* when its holder can be recognised as the app that
portalloc handed the port to: the holder's environment sets ``PORT`` or a ``…_PORT``
variable to that port (``portalloc run``, ``eval "$(portalloc env …)"``), or the
holder's working directory has a ``.env`` whose portalloc block is this allocation's
(``portalloc dotenv``). Anything else listening on a ledger port, including a process
the user may not inspect, is *held by something else*: ``status`` flags it,
``check --live`` fails on it, ``get`` and ``run`` warn about it.

Pydantic-free, so the ``get`` fast path can use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from portalloc.core.keys import AllocationRow
from portalloc.core.limits import MAX_ENV_BYTES
from portalloc.errors import UnsafeFile
from portalloc.machine import probe
from portalloc.machine.probe import ListeningProcess, PortState
from portalloc.storage.files import read_regular_file


class PortReport(NamedTuple):
    """One ledger port on this machine now."""

    model: str
    app_num: int
    role: str
    port: int
    state: PortState
    holders: tuple[ListeningProcess, ...]
    #: Listening, and the holder is recognised as this allocation's app.
    own: bool
    #: The OS ephemeral range, if the port lies inside it.
    ephemeral: tuple[int, int] | None

    @property
    def label(self) -> str:
        """``model/app_num``."""
        return f"{self.model}/{self.app_num}"

    @property
    def held(self) -> bool:
        """Listening, and not by its own app."""
        return self.state is PortState.LISTENING and not self.own

    def holder_text(self) -> str:
        """``nc (pid 77)``, several joined by commas, or a phrase when no holder is visible."""
        if not self.holders:
            return "a process portalloc cannot see (another user's, or this OS does not tell)"
        return ", ".join(holder.describe() for holder in self.holders)

    @property
    def where(self) -> str:
        """``port 5001 (backend of model_a/1)``."""
        return f"port {self.port} ({self.role} of {self.label})"

    def problems(self) -> list[str]:
        """What is wrong with this port now, one sentence each (empty when nothing is)."""
        where = self.where
        found = []
        if self.held:
            found.append(f"{where} is held by {self.holder_text()}")
        if self.state is PortState.RESERVED:
            found.append(f"{where} is reserved by the OS (bind is refused)")
        if self.ephemeral is not None:
            low, high = self.ephemeral
            found.append(f"{where} lies in the OS ephemeral port range {low}-{high}: outgoing connections may take it")
        return found


class PairReport(NamedTuple):
    """One allocation on this machine now: the reports of its backend and its frontend."""

    model: str
    app_num: int
    backend: PortReport
    frontend: PortReport

    @property
    def ports(self) -> tuple[PortReport, PortReport]:
        """``(backend, frontend)``."""
        return self.backend, self.frontend

    def problems(self) -> list[str]:
        """What is wrong with either port now, backend first (empty when nothing is)."""
        return [problem for port in self.ports for problem in port.problems()]


def inspect(entries: Iterable[AllocationRow]) -> list[PairReport]:
    """A report for every allocation ``(model, app_num, backend, frontend)``, in order."""
    entries = list(entries)
    ephemeral = probe.ephemeral_range()
    states = {port: probe.port_state(port) for entry in entries for port in entry[2:]}
    live = any(state is PortState.LISTENING for state in states.values())
    # The OS tables are read only when someone listens: they are slow to read on a big machine.
    listening = probe.listening_sockets() if live else None
    inodes = {
        inode
        for port, state in states.items()
        if state is PortState.LISTENING and listening is not None
        for inode in listening.get(port, ())
    }
    by_inode = probe.holders(inodes) if inodes else {}
    pairs = []
    for model, app_num, backend, frontend in entries:
        reports = []
        for role, port in (("backend", backend), ("frontend", frontend)):
            state = states[port]
            found: dict[int, ListeningProcess] = {}
            if state is PortState.LISTENING and listening is not None:
                for inode in sorted(listening.get(port, ())):
                    found.update((holder.pid, holder) for holder in by_inode.get(inode, ()))
            holders = tuple(found[pid] for pid in sorted(found))
            own = state is PortState.LISTENING and any(_is_app(h, model, app_num, port) for h in holders)
            in_range = ephemeral if ephemeral is not None and ephemeral[0] <= port <= ephemeral[1] else None
            reports.append(PortReport(model, app_num, role, port, state, holders, own, in_range))
        pairs.append(PairReport(model, app_num, reports[0], reports[1]))
    return pairs


def held_warnings(model: str, app_num: int, backend: int, frontend: int) -> list[str]:
    """Warnings for an existing allocation whose ports something else holds now (cheap when both are free).

    The bind tests of the two ports decide the common case; a connection attempt tells
    TIME_WAIT from a listener; ``/proc`` is read only for a listener.
    """
    if probe.is_free(backend) and probe.is_free(frontend):
        return []
    return [
        f"{report.where} is held by {report.holder_text()}; the allocation stays (release it for a new pair)"
        for pair in inspect([(model, app_num, backend, frontend)])
        for report in pair.ports
        if report.held
    ]


def _is_app(holder: ListeningProcess, model: str, app_num: int, port: int) -> bool:
    environment = probe.process_environment(holder.pid)
    if environment is not None:
        wanted = str(port)
        if any(value == wanted for name, value in environment.items() if name == "PORT" or name.endswith("_PORT")):
            return True
    cwd = probe.process_cwd(holder.pid)
    return cwd is not None and _has_own_dotenv(cwd, model, app_num)


def _has_own_dotenv(directory: Path, model: str, app_num: int) -> bool:
    # Imported here: ``get`` of an existing key imports this module for ``held_warnings``, and reads no .env
    # unless a port is held.
    from portalloc.integrations.envfile import block_label

    # The directory is a stranger's as often as the app's: its .env may be a FIFO (which
    # would block this read forever) or huge, so it is read as every file is read.
    try:
        data = read_regular_file(directory / ".env", ".env file", MAX_ENV_BYTES).data
    except (OSError, UnsafeFile):
        return False
    return block_label(data) == f"{model}/{app_num}"
