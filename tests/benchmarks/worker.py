"""One of P concurrent processes: allocates COUNT new keys of its own, through the API or the CLI.

``python worker.py api|cli STORE PATH WORKER COUNT``. It gets ready (imports, opens
the store, and in API mode allocates one warm-up key), prints ``ready``, waits for a
line on stdin, allocates, and prints one JSON line: when it finished
(``time.perf_counter``, which is the system-wide monotonic clock on Linux, so the
driver can compare it with its own), what it was given, and how many calls failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from clis import get_command, parse_output
from stores import open_store


def main() -> None:
    mode, store_name, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    worker, count = int(sys.argv[4]), int(sys.argv[5])
    keys = [(f"worker_{worker}", j) for j in range(1, count + 1)]
    results: list[list[object]] = []
    errors: list[str] = []
    if mode == "api":
        store = open_store(store_name, path)
        store.allocate((f"warm_{worker}", 1))
    print("ready", flush=True)
    sys.stdin.readline()
    for key in keys:
        try:
            if mode == "api":
                got = store.allocate(key)
                ports = list(got) if isinstance(got, tuple) else [got]
            else:
                argv, env = get_command(store_name, path, key)
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
                ports = list(parse_output(store_name, done.stdout))
        except Exception as error:  # a lost allocation, counted by the driver
            errors.append(f"{type(error).__name__}: {error}"[:200])
            continue
        results.append([key[0], key[1], ports])
    end = time.perf_counter()
    print(json.dumps({"end": end, "results": results, "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
