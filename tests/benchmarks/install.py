"""A regular (not editable) install of this checkout, for the command-line rows.

An editable install adds a path finder that every ``portalloc`` start pays for (about
10 ms at start-up here); a user's ``pip install portalloc`` has none. So by default the
benchmark builds a wheel of the work tree and installs it, with the ``serve`` extra (for
the HTTP rows) and its dependencies as pip resolves them (the same versions where a
constraints file pins them), into a fresh virtual environment under the run's temporary
directory, and every ``portalloc`` command of the run (the workers' too, through
``PORTALLOC_BENCH_BIN``) is that one. ``run.py --editable`` skips this and times the
``portalloc`` beside the interpreter; ``run.py --checkout DIR`` installs another work
tree's portalloc instead (an A/B against ``main``, say).

port-for goes into the same virtual environment (the version this interpreter has), and
the peers' scripts and the ``python -c pass`` floor run under that environment's
interpreter too (``clis.python``): a development environment's editable install adds
its path finder to every interpreter started there (about 12 ms here), which would
weigh on the peers' figures and not on portalloc's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
#: The directory of the installed ``portalloc`` and ``port-for`` console scripts and their interpreter;
#: read by ``clis.console_script`` and ``clis.python``.
BIN_VARIABLE = "PORTALLOC_BENCH_BIN"


def install_regular(workdir: Path, checkout: Path = REPOSITORY) -> Path:
    """Build a wheel of ``checkout`` and install it into a new venv under ``workdir``; its ``bin`` directory."""
    source, wheels, venv = workdir / "source", workdir / "wheel", workdir / "venv"
    # Built from a copy of the work tree's files (uncommitted changes included): setuptools
    # leaves a build/ directory in the tree it builds, and the work tree is not ours to litter.
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=checkout,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (checkout / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(checkout / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)])
    (wheel,) = wheels.glob("portalloc-*.whl")
    _run([sys.executable, "-m", "venv", str(venv)])
    from importlib.metadata import version

    peer = f"port-for=={version('port-for')}"
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[serve]", peer])
    return venv / "bin"


def use_regular(workdir: Path, checkout: Path = REPOSITORY) -> Path:
    """``install_regular``, and point this process and its children at it."""
    bin_dir = install_regular(workdir, checkout)
    os.environ[BIN_VARIABLE] = str(bin_dir)
    return bin_dir


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"installing portalloc for the benchmark failed: {' '.join(argv)}\n{done.stderr[-2000:]}")
