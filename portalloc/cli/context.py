"""What a command runs in: the global options resolved (``Settings``), the service over the ledger, its warnings.

Click-free, so that the quick front door (``cli.quick``) runs ``get`` through the very
``Settings`` the click command line does; pydantic-free until a command asks for the
service, so ``get`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

    from portalloc.service.facade import PortAllocationService


def click_say(line: str) -> None:
    """Write ``line`` on stderr with ``click.echo``: how the click command line says a ``Warning:`` and the like."""
    import click

    click.echo(line, err=True)


class UsedPorts(NamedTuple):
    """The pair a command uses: its ports, and the linked worktree whose own pair it is (``None``: the ledger's)."""

    backend: int
    frontend: int
    worktree: str | None = None


class Settings(NamedTuple):
    """The global options, resolved: which ledger, which pre-configuration, how long to wait for the lock.

    ``probe`` is ``False`` under ``--no-probe``: new allocations ignore what the OS holds
    and ``get``/``run`` do not look at the machine. ``create_ledger`` says whether a
    write may create a missing ledger: only at the default discovered location, the
    root of the git repository (``ledger_creatable``); anywhere else a typo in
    ``--ledger`` or ``PORTALLOC_LEDGER`` would silently start a second ledger.

    A ``NamedTuple``, not a dataclass: ``dataclasses`` imports ``inspect``, which alone
    costs a quarter of port-for's whole ``get`` (``get`` runs through here).
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
    #: Writes one line on stderr (a ``Warning: …``): ``click.echo`` on the click command line, the quick
    #: front door's own writer there (the same bytes).
    say: Callable[[str], object] = click_say

    @classmethod
    def resolve(
        cls, ledger: Path | None, config: Path | None, say: Callable[[str], object], **options: Any
    ) -> Settings:
        """The settings of the root group's options: ``ledger`` (``None``: not given) found, ``config`` (``None``:
        not given) looked for beside it, a default pre-configuration passed over said (``say``), and whether
        a write may create the ledger (``storage.paths.ledger_creatable``)."""
        from portalloc.storage.paths import find_config, find_ledger, ledger_creatable

        ledger_path = ledger if ledger is not None else find_ledger(Path.cwd())
        config_path = config
        if config is None:
            found = find_config(ledger_path)
            config_path = found.path
            for skipped in found.skipped:
                say(f"Warning: {skipped}")
        creatable = ledger_creatable(ledger_path, ledger is not None)
        return cls(ledger_path, config_path, create_ledger=creatable, say=say, **options)

    def service(self) -> PortAllocationService:
        """A service over this ledger (imports pydantic on first use).

        Its warnings are shown as ``Warning: …`` lines on stderr from then on.
        """
        from portalloc.service.facade import PortAllocationService

        show_warnings(self.say)
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
        self.say(
            f"Warning: using {found[0]}, this repository's ledger (moved there from {self.ledger_path.name}); "
            "--ledger chooses another"
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

        show_warnings(self.say)
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
                self.say(f"{model}/{app_num} uses worktree {used.worktree}'s own pair (worktrees: separate)")
            return used
        for warning in hit.warnings:
            self.say(f"Warning: {warning}")
        return UsedPorts(hit.backend, hit.frontend)


def show_warnings(say: Callable[[str], object]) -> None:
    """From now on, show what the ``portalloc`` logger warns about as ``Warning: …`` lines, written by ``say``."""
    import logging  # here, not at the top: a lookup never needs it

    class WarningLines(logging.Handler):
        portalloc_cli = True

        def emit(self, record: logging.LogRecord) -> None:
            say(f"Warning: {record.getMessage()}")

    logger = logging.getLogger("portalloc")
    for handler in [handler for handler in logger.handlers if getattr(handler, "portalloc_cli", False)]:
        logger.removeHandler(handler)  # one writer: the last command's (tests run many in one process)
    logger.addHandler(WarningLines())
    logger.setLevel(logging.WARNING)
    logger.propagate = False
