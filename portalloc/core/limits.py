"""The numbers every layer agrees on. Plain Python, so the fast paths can use them too."""

from __future__ import annotations

#: The ledger format of every ledger whose policy needs nothing newer: what older portalloc reads.
LEDGER_VERSION = 1
#: The format of a ledger whose policy says ``worktrees: separate``: a portalloc that predates
#: it refuses the file (its version says so) rather than hand every worktree the ledger's pairs.
SEPARATE_WORKTREES_VERSION = 2
#: The newest ledger format this portalloc reads and writes.
LATEST_LEDGER_VERSION = SEPARATE_WORKTREES_VERSION
#: No port below 1024 (privileged) is ever handed out or accepted in a ledger.
MIN_PORT = 1024
MAX_PORT = 65535
MAX_MODEL_LENGTH = 200
MAX_APP_NUM = 1_000_000
#: Seconds a writer waits for the ledger lock before giving up.
DEFAULT_LOCK_TIMEOUT = 10.0
#: The most portalloc reads of one file of each kind before refusing it as too large.
#: A ledger at the widest policy (32,000 pairs, 200-character names) is under 10 MB.
MAX_LEDGER_BYTES = 32 * 1024 * 1024
MAX_CONFIG_BYTES = 32 * 1024 * 1024
MAX_COMPOSE_BYTES = 4 * 1024 * 1024
MAX_ENV_BYTES = 1024 * 1024
#: A batch of keys (``get-many``) and a file to import (an old SQLite database, say).
MAX_BATCH_BYTES = 32 * 1024 * 1024
MAX_IMPORT_BYTES = 256 * 1024 * 1024
#: git's own small files portalloc reads: the rebase state the merge driver quotes (one line per
#: replayed commit), the ``.gitattributes`` and ``.gitignore`` git-setup appends to, a worktree's ``.git`` file.
MAX_GIT_STATE_BYTES = 1024 * 1024

#: More digits than any number portalloc takes can have. Past 4,300 digits Python's int()
#: refuses a string with a ValueError of its own, so a longer run is refused before it.
MAX_NUMBER_DIGITS = 20


def whole_number(text: str) -> int | None:
    """``text`` as an int if it is 1 to ``MAX_NUMBER_DIGITS`` ASCII digits, else ``None``.

    Stricter than ``int()``, which also takes ``" 1"``, ``"1_0"``, ``"+1"`` and non-ASCII
    digits, and raises for 4,301 digits: what a user types as a number is plain digits.
    """
    if 0 < len(text) <= MAX_NUMBER_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None
