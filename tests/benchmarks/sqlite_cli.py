"""The SQLite baseline as a command: ``python sqlite_cli.py DB MODEL APP_NUM`` prints ``BACKEND FRONTEND``.

What a script around the old database design would be: open one connection, check,
insert (with retries), print.
"""

import sys
from pathlib import Path

from stores import SqliteStore

database, model, app_num = sys.argv[1], sys.argv[2], int(sys.argv[3])
backend, frontend = SqliteStore(Path(database)).allocate((model, app_num))  # type: ignore[misc]
print(backend, frontend)
