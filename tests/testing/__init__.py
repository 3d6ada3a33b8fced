"""Helpers that only tests use, kept out of the package (as pre-commit keeps its ``testing/``)."""
