"""Start a program in place of portalloc: ``portalloc run``'s ``exec``.

``exec`` rather than a child process: the program keeps portalloc's pid, terminal,
process group and stdin/stdout/stderr, so every signal (Ctrl-C from the terminal,
``kill`` from a supervisor, job control, window resizes) reaches it exactly once with
no forwarding code, nothing of portalloc stays in memory, and its exit status is the
program's own (a shell shows 128+N when a signal ends it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from portalloc.errors import CommandNotExecutable, CommandNotFound

#: Python ignores these at start-up; an ignored disposition survives ``exec``, and
#: ``yes | head`` would then end in a write error instead of a quiet SIGPIPE.
_RESTORED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name))


def find_program(name: str, search_path: str | None) -> str:
    """The file ``exec`` would run for ``name``: as given if it has a slash, else found on ``search_path``.

    Raises ``CommandNotFound`` (exit 127) or ``CommandNotExecutable`` (exit 126), as a shell would.
    """
    if not name:
        raise CommandNotFound("command not found: the command is empty")
    if os.sep in name or (os.altsep is not None and os.altsep in name):
        if not os.path.exists(name):
            raise CommandNotFound(f"command not found: {name} does not exist")
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise CommandNotExecutable(f"cannot run {name}: it is not an executable file")
        return name
    found = shutil.which(name, path=search_path if search_path is not None else os.defpath)
    if found is None:
        raise CommandNotFound(f"command not found: {name} (not on PATH)")
    return found


def exec_program(program: str, argv: Sequence[str], environment: Mapping[str, str]) -> NoReturn:
    """Replace this process with ``program`` (``argv[0]`` as its name) in ``environment``; never returns.

    Raises ``CommandNotExecutable`` if the OS refuses to run the file.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # Windows has no real exec: wait for a child and pass its exit code on.
        sys.exit(subprocess.call([program, *argv[1:]], env=dict(environment)))
    for signum in _RESTORED_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execve(program, list(argv), dict(environment))
    except OSError as error:
        raise CommandNotExecutable(f"cannot run {argv[0]}: {error.strerror or error}") from None
