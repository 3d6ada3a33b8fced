"""The reliability harness: contention, crash injection, lock-holder death and bad input.

Run it with ``python -m tests.reliability.harness`` from the repository root; the test
suite runs a small configuration of each part (``tests/test_reliability.py``,
``tests/cli/test_bad_input.py``). Nothing here is collected by pytest as a test.
"""
