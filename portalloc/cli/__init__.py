"""The ``portalloc`` command line: entry point, shared options, and one module per command."""

from portalloc.cli.main import main

__all__ = ["main"]
