"""The SQLite baseline as a command: ``python sqlite_cli.py DB MODEL APP_NUM`` prints ``BACKEND FRONTEND``.

What a script around the old database design would be: open one connection, check,
insert (with retries), print. ``python sqlite_cli.py --many DB FILE`` is its batch form
(``MODEL APP_NUM`` lines in, one ``MODEL APP_NUM BACKEND FRONTEND`` line out per key),
all inserted in one transaction: the baseline's best case for ``portalloc get-many``.
"""

import sys
from pathlib import Path

from stores import SqliteStore

if sys.argv[1] == "--many":
    database, batch = sys.argv[2], Path(sys.argv[3])
    keys = [
        (model, int(app_num)) for model, app_num in (line.rsplit(None, 1) for line in batch.read_text().splitlines())
    ]
    pairs = SqliteStore(Path(database)).allocate_many(keys)
    for (model, app_num), pair in zip(keys, pairs, strict=True):
        print(model, app_num, *pair)  # type: ignore[misc]
else:
    database, model, app_num = sys.argv[1], sys.argv[2], int(sys.argv[3])
    backend, frontend = SqliteStore(Path(database)).allocate((model, app_num))  # type: ignore[misc]
    print(backend, frontend)
