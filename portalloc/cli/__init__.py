"""The ``portalloc`` command line: the entry point, its context, parameters and output, and one module per command."""

from portalloc.cli.main import main

__all__ = ["main"]
