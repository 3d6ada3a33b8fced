"""The numbers every layer agrees on. Plain Python, so the fast paths can use them too."""

from __future__ import annotations

#: The ledger format this portalloc reads and writes.
LEDGER_VERSION = 1
#: No port below 1024 (privileged) is ever handed out or accepted in a ledger.
MIN_PORT = 1024
MAX_PORT = 65535
MAX_MODEL_LENGTH = 200
MAX_APP_NUM = 1_000_000
#: Seconds a writer waits for the ledger lock before giving up.
DEFAULT_LOCK_TIMEOUT = 10.0
