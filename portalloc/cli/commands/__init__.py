"""One module per command. Each defines a click command; ``portalloc.cli.main`` wires them together.

Command modules import only click and the pydantic-free modules at import time, so
``portalloc --help`` and lookups stay fast; the service is imported when a command
needs it (``Settings.service``).
"""
