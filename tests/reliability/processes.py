"""How the harness starts the real ``portalloc`` command and forked API workers."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Environment variables that would leak the developer's own set-up into a run.
PORTALLOC_ENV = (
    "PORTALLOC_LEDGER",
    "PORTALLOC_CONFIG",
    "PORTALLOC_LOCK_TIMEOUT",
    "PORTALLOC_APPS_DIR",
    "PORTALLOC_PROBE",
)
_PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: what lets root ignore permission bits.
_DAC_CAPS = (1, 2)


def portalloc_script() -> str:
    """The installed ``portalloc`` console script (next to this interpreter, else on PATH)."""
    script = Path(sys.executable).with_name("portalloc")
    if script.exists():
        return str(script)
    found = shutil.which("portalloc")
    if found is None:
        raise RuntimeError("the portalloc console script is not installed; run `pip install -e . --group test`")
    return found


def child_env() -> dict[str, str]:
    """The current environment without portalloc's own variables."""
    return {k: v for k, v in os.environ.items() if k not in PORTALLOC_ENV}


def obey_file_permissions() -> None:
    """Make this process (and what it execs) obey permission bits even as root; no-op for other users.

    Root reads a mode-000 file and writes into a mode-555 directory through
    ``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH``. Dropping both (from the effective,
    permitted and inheritable sets, and from the bounding set so an ``exec`` cannot get
    them back) is how "unreadable ledger" and "read-only directory" are tested honestly
    when the harness runs as root. The process stays uid 0, so it can still import.
    Used in forked children and as ``preexec_fn``.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _DAC_CAPS:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    # Two __user_cap_data_struct {effective, permitted, inheritable}: capabilities 0-31, 32-63.
    data = (ctypes.c_uint32 * 6)()
    if libc.capget(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    keep = ~sum(1 << cap for cap in _DAC_CAPS) & 0xFFFFFFFF
    for index in range(3):
        data[index] &= keep
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def run_forked(work: Callable[[], Any], *, unprivileged: bool = False) -> dict[str, Any]:
    """Run ``work()`` in a forked child and return ``{"value": repr}`` or ``{"error": type, "message": …}``.

    A fork keeps portalloc's imports warm (milliseconds per call) while giving every
    call its own process: a hostile input cannot disturb the harness, and the child can
    drop root's power over permission bits first.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's stack
        status = 0
        try:
            os.close(read_end)
            if unprivileged:
                obey_file_permissions()
            try:
                outcome: dict[str, Any] = {"value": repr(work())}
            except BaseException as error:
                outcome = {
                    "error": type(error).__name__,
                    "portalloc": _is_portalloc_error(error),
                    "message": str(error),
                }
            os.write(write_end, json.dumps(outcome).encode())
        except BaseException:
            status = 70
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as reader:
        while chunk := reader.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"error": "ChildDied", "portalloc": False, "message": f"wait status {status}"}
    result: dict[str, Any] = json.loads(b"".join(chunks))
    return result


def _is_portalloc_error(error: BaseException) -> bool:
    from portalloc.errors import PortallocError

    return isinstance(error, PortallocError)
