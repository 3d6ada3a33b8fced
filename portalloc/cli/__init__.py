"""The ``portalloc`` command line: the entry point and its quick front door, the click group, its context,
parameters and output, and one module per command.

Nothing is imported here: ``portalloc get`` of a key the ledger holds runs without click
(``cli.entry``, ``cli.quick``), and every module of this package is imported through it.
"""
