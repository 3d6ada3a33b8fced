"""What a command runs in: the global options resolved (``Settings``), the service over the ledger, its warnings.

Pydantic-free until a command asks for the service, so ``get`` of an existing key stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import click

if TYPE_CHECKING:
    from portalloc.service.facade import PortAllocationService


class UsedPorts(NamedTuple):
    """The pair a command uses: its ports, and the linked worktree whose own pair it is (``None``: the ledger's)."""

    backend: int
    frontend: int
    worktree: str | None = None


@dataclass(frozen=True)
class Settings:
    """The global options, resolved: which ledger, which pre-configuration, how long to wait for the lock.

    ``probe`` is ``False`` under ``--no-probe``: new allocations ignore what the OS holds
    and ``get``/``run`` do not look at the machine. ``create_ledger`` says whether a
    write may create a missing ledger: only at the default discovered location, the
    root of the git repository (``ledger_creatable``); anywhere else a typo in
    ``--ledger`` or ``PORTALLOC_LEDGER`` would silently start a second ledger.
    """

    ledger_path: Path
    config_path: Path | None
    lock_timeout: float
    probe: bool = True
    create_ledger: bool = False
    #: ``False`` under ``--no-leases`` (``PORTALLOC_LEASES=0``): no host lease store (``service.host``).
    leases: bool = True
    #: ``--allow-confusable``: a new model may look like an existing one (``portalloc.core.names``).
    allow_confusable: bool = False

    def service(self) -> PortAllocationService:
        """A service over this ledger (imports pydantic on first use).

        Its warnings are shown as ``Warning: …`` lines on stderr from then on.
        """
        from portalloc.service.facade import PortAllocationService

        show_warnings()
        return PortAllocationService(self.moved_ledger() or self.ledger_path, self.config_path, **self._options())

    def _options(self) -> dict[str, Any]:
        """The settings a ledger's service (or the plain write's target) is made with, beside its paths."""
        return {
            "lock_timeout": self.lock_timeout,
            "probe": self.probe,
            "create_ledger": self.create_ledger,
            "leases": self.leases,
            "allow_confusable": self.allow_confusable,
        }

    def moved_ledger(self) -> Path | None:
        """The repository's ledger moved with ``git mv``, where a write would otherwise start a second one at the root.

        Only when this write may create the ledger (the default location, the repository
        root) and there is none: one tracked ledger elsewhere is used, and said so on stderr;
        several are refused (``LedgerMissing``) naming them.
        """
        if not self.create_ledger or self.ledger_path.exists():
            return None
        from portalloc.errors import LedgerMissing
        from portalloc.integrations.leasegit import tracked_ledgers

        top = self.ledger_path.parent
        found = [path for path in tracked_ledgers(top, self.ledger_path.name) if (top / path).is_file()]
        if not found:
            return None
        if len(found) > 1:
            raise LedgerMissing(
                f"there is no ledger at {self.ledger_path}, and this repository tracks {len(found)}: "
                f"{', '.join(found)}; say which with --ledger"
            )
        click.echo(
            f"Warning: using {found[0]}, this repository's ledger (moved there from {self.ledger_path.name}); "
            "--ledger chooses another",
            err=True,
        )
        return top / found[0]

    def allocated(self, model: str, app_num: int) -> UsedPorts:
        """``get_or_allocate_ports``'s pair for a key the fast lookup did not answer, without pydantic.

        The write reads the ledger into plain classes where the codec's fast reader accepts
        it (``LedgerTarget.plain``); the models are imported only for what needs them: a
        file the fast reader refuses (they say what is wrong, as for a bad
        ``port_config.json``), a ledger with conflicts (``audit``), a linked worktree's
        own pair (``worktrees: separate``).
        """
        from portalloc.service.target import LedgerTarget
        from portalloc.service.worktrees import pair_in_use

        show_warnings()
        target = LedgerTarget.plain(self.moved_ledger() or self.ledger_path, self.config_path, **self._options())
        pair, worktree = pair_in_use(target, model, app_num)
        return UsedPorts(pair.backend, pair.frontend, None if worktree is None else str(worktree))

    def pair_for(self, model: str, app_num: int, *, say_worktree: bool = True) -> UsedPorts:
        """The pair the key uses here, allocated if new; an existing pair is looked up without pydantic.

        For an existing pair (``cli.knownpair``, which the quick front door shares) the
        machine is looked at too (unless ``--no-probe`` or the ledger's policy says
        ``"probe": false``): a port that something else holds now is warned about on
        stderr, and the pair is kept.
        A linked worktree's own pair (``worktrees: separate``) is said on stderr unless
        not ``say_worktree`` (the caller prints it itself).
        """
        from portalloc.cli.knownpair import known_pair

        hit = known_pair(
            self.ledger_path, model, app_num, leases=self.leases, probe=self.probe, sync=lambda: self.service().ledger()
        )
        if hit is None:
            used = self.allocated(model, app_num)
            if used.worktree is not None and say_worktree:
                click.echo(
                    f"{model}/{app_num} uses worktree {used.worktree}'s own pair (worktrees: separate)", err=True
                )
            return used
        for warning in hit.warnings:
            click.echo(f"Warning: {warning}", err=True)
        return UsedPorts(hit.backend, hit.frontend)


pass_settings = click.make_pass_decorator(Settings)


def show_warnings() -> None:
    """Show what the ``portalloc`` logger warns about as ``Warning: …`` lines on the current stderr."""
    import logging  # here, not at the top: a lookup never needs it

    class WarningLines(logging.Handler):
        portalloc_cli = True

        def emit(self, record: logging.LogRecord) -> None:
            click.echo(f"Warning: {record.getMessage()}", err=True)

    logger = logging.getLogger("portalloc")
    if not any(getattr(handler, "portalloc_cli", False) for handler in logger.handlers):
        logger.addHandler(WarningLines())
        logger.setLevel(logging.WARNING)
        logger.propagate = False
