"""The ``portalloc`` console script and ``python -m portalloc``: the quick front door first, else click.

Importing click costs as much as port-for's whole ``--help``, so the entry point does
not: ``cli.quick`` answers ``portalloc --help`` and ``portalloc get`` exactly as the
click command line would, and declines everything else, which ``cli.main`` then runs
as it always has.
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress

from portalloc import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NoReturn


def main() -> None:
    """Console-script entry point: the quick answer where there is one, else the click command line."""
    try:
        from portalloc.cli.quick import answer

        status = answer(sys.argv[1:])
    except KeyboardInterrupt:  # Ctrl-C ends a quick answer as it ends the click path's: a new line, status 130
        from portalloc.cli.stdout import interrupted

        with suppress(OSError, ValueError, AttributeError):  # click says it so: the shell's prompt starts afresh
            sys.stderr.write("\n")
            sys.stderr.flush()
        interrupted()
    if status is not None:
        leave(status)
    from portalloc.cli.main import main as click_main

    click_main()


def leave(status: int) -> NoReturn:
    """End a quick answer with ``status``, skipping the interpreter's teardown (``os._exit``).

    Everything the answer does is done by now: its output written and flushed (and its
    errors reported), the ledger renamed into place, the host lease store's transaction
    committed, no lock held. The one part of the teardown that matters is done here: the
    host lease store is closed, which checkpoints its write-ahead log (left open, every
    later process would read the growing log again). The rest, freeing the ~250 modules
    a write imports, is cost alone: about 10 ms of a new key's ``get``
    (``misc/performance.md``). The click path exits normally.
    """
    if "portalloc.machine.leases" in sys.modules:  # the answer used the host lease store
        from portalloc.machine.leases import close_open_stores

        close_open_stores()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError, AttributeError):  # written and flushed already: a formality
            stream.flush()
    os._exit(status)
