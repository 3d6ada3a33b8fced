"""The ``portalloc`` console script and ``python -m portalloc``: the quick front door first, else click.

Importing click costs as much as port-for's whole ``--help``, so the entry point does
not: ``cli.quick`` answers ``portalloc --help`` and ``portalloc get`` of a key the
ledger holds where the click command line would answer exactly the same, and declines
everything else, which ``cli.main`` then runs as it always has.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point: the quick answer where there is one, else the click command line."""
    try:
        from portalloc.cli.quick import answer

        status = answer(sys.argv[1:])
    except KeyboardInterrupt:  # Ctrl-C ends a quick answer as it ends the click path's
        from portalloc.cli.stdout import interrupted

        interrupted()
    if status is not None:
        sys.exit(status)
    from portalloc.cli.main import main as click_main

    click_main()
