"""The bad-input matrix: hostile input for every command and for the API.

Each case gets a fresh directory with its files, runs once (the real ``portalloc``
script, or the API in a forked child), and passes when it fails cleanly: for the CLI
exactly one stderr line starting ``Error:``, a non-zero exit and no traceback; for the
API a ``PortallocError`` with a one-line message; for both, every file in the directory
byte-for-byte unchanged (a ``*.lock`` sidecar appearing does not count: it is the
lock, not data). Cases that need permission bits to bite run without root's
power to ignore them when the harness is root, since root reads a mode-000 file
anyway (``processes.obey_file_permissions``).
"""

from __future__ import annotations

import hashlib
import io
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.reliability.processes import (
    PORTALLOC_ENV,
    child_env,
    obey_file_permissions,
    portalloc_script,
    run_forked,
)

LEDGER = "portalloc.json"
#: A docker-compose file for ``compose-check`` (published port 5001, m/1's backend).
COMPOSE = "compose.yaml"
_COMPOSE_TEXT = b'services:\n  web:\n    ports:\n      - "5001:5001"\n'

# --- files the cases start from ---------------------------------------------------------

_ROW = '{{"model": "{model}", "app_num": {app_num}, "backend": {backend}, "frontend": {frontend}}}'
_POLICY = '{"backend_start": 5001, "frontend_start": 8001, "step": 2, "max_port": 65535, "skip_bad_ports": true}'


def _ledger_text(*rows: str, version: str = "1") -> bytes:
    body = "[\n    " + ",\n    ".join(rows) + "\n  ]" if rows else "[]"
    return f'{{\n  "version": {version},\n  "policy": {_POLICY},\n  "allocations": {body}\n}}\n'.encode()


def _row(model: str = "m", app_num: object = 1, backend: object = 5001, frontend: object = 8001) -> str:
    return _ROW.format(model=model, app_num=app_num, backend=backend, frontend=frontend)


VALID = _ledger_text(_row())

#: Ledger contents that are not a valid ledger, by what is wrong with them.
BAD_LEDGERS: dict[str, bytes] = {
    "ledger truncated mid-file": VALID[: len(VALID) // 2],
    "ledger empty (0 bytes)": b"",
    "ledger not JSON": b"m/1 = 5001, 8001\n",
    "ledger not UTF-8": b'\xff\xfe{"version": 1}',
    "ledger JSON list, not object": b"[]\n",
    "ledger allocations is an object": b'{"version": 1, "policy": {}, "allocations": {"m": [5001, 8001]}}\n',
    "ledger duplicate JSON names": b'{"version": 1, "version": 1, "policy": {}, "allocations": []}\n',
    "ledger row with a name twice": _ledger_text(
        '{"model": "m", "model": "n", "app_num": 1, "backend": 5001, "frontend": 8001}'
    ),
    "ledger port 0": _ledger_text(_row(backend=0)),
    "ledger port 65536": _ledger_text(_row(frontend=65536)),
    "ledger port -1": _ledger_text(_row(backend=-1)),
    "ledger port 80 (privileged)": _ledger_text(_row(backend=80)),
    'ledger port "5001" (string)': _ledger_text(_row(backend='"5001"')),
    "ledger port NaN": _ledger_text(_row(backend="NaN")),
    "ledger 5,000-digit number": _ledger_text(_row(frontend="9" * 5000)),
    "ledger nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "ledger version 3 (newer)": _ledger_text(_row(), version="3"),
    "ledger same port on both roles": _ledger_text(_row(backend=5001, frontend=5001)),
    "ledger bad policy (step 0)": _ledger_text(_row()).replace(b'"step": 2', b'"step": 0'),
    # The lookup fast path once answered get/env/run of m/1 from each of these.
    "ledger row with backend twice": _ledger_text(
        '{"model": "m", "app_num": 1, "backend": 5003, "backend": 5001, "frontend": 8001}'
    ),
    "ledger allocations twice": _ledger_text(_row()).replace(
        b'"allocations": [', b'"allocations": [], "allocations": ['
    ),
    "ledger version true": _ledger_text(_row(), version="true"),
    "ledger row model \\udcff": _ledger_text(_row(), _row("x\\udcff", 1, 5003, 8003)),
    "ledger row model with zero-width space": _ledger_text(_row(), _row("x\\u200b", 1, 5003, 8003)),
}

#: Valid, but not canonical and with a conflict, so that every writing command must write.
_NEEDS_WRITING = _ledger_text(_row(), _row("x", 1, 5003, 8003), _row("y", 1, 5003, 8005)).replace(
    b"\n    ", b"\n        "
)

_CONFIG_ROW = '{{"model": "n", "app_number": 2, "backend_port": {backend}, "frontend_port": {frontend}}}'
#: ``port_config.json`` contents that are not a valid pre-configuration.
BAD_CONFIGS: dict[str, bytes] = {
    "config not JSON": b'[{"model": "n"',
    "config an object, not a list": b'{"n": [5101, 8101]}',
    "config port 70000": ("[" + _CONFIG_ROW.format(backend=5101, frontend=70000) + "]").encode(),
    "config missing a field": b'[{"model": "n", "app_number": 2, "backend_port": 5101}]',
    "config key twice": ("[" + ",".join([_CONFIG_ROW.format(backend=5101, frontend=8101)] * 2) + "]").encode(),
    "config not UTF-8": b"\xff\xfe[]",
    "config nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
}


def _alias_bomb(levels: int) -> bytes:
    lines = ['  a0: &a0 ["5001:80"]\n']
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, levels)]
    return ("x-bomb:\n" + "".join(lines) + "services:\n  web:\n    image: x\n").encode()


#: Compose files ``compose-check`` must refuse in one line (findings inside a valid file are stdout, not here).
HOSTILE_COMPOSE: dict[str, bytes] = {
    "compose alias bomb (9**9 values)": _alias_bomb(10),
    "compose alias inside its own anchor": b"x-loop: &a [*a]\nservices:\n  web:\n    image: x\n",
    "compose nested 1,000 deep": b"services:\n  web:\n    x: " + b"[" * 1000 + b"]" * 1000 + b"\n",
    "compose nested 50,000 deep (flow)": b"services: " + b"{a: " * 50_000 + b"1" + b"}" * 50_000 + b"\n",
    "compose over 4 MiB": b"services: {}\n" + b"#" * (4 * 1024 * 1024),
    "compose not UTF-8": b"services:\n  caf\xe9:\n    image: x\n",
    "compose not YAML": b"services: [\n",
    "compose a list, not a mapping": b"- services\n",
}

#: ``.env`` targets ``dotenv`` must refuse before it allocates (``out.env`` unless a symlink says otherwise).
HOSTILE_DOTENV: dict[str, bytes] = {
    "dotenv target UTF-16 (PowerShell 5)": "A=1\r\n".encode("utf-16"),
    "dotenv target holds another app's block": b"# >>> portalloc: m/1 >>>\nBACKEND_PORT=5001\n# <<< portalloc <<<\n",
    "dotenv target over 1 MiB": b"A=1\n" + b"#" * (1024 * 1024),
}


#: Model names that must not become keys (the CLI spelling and the API value are the same).
BAD_MODELS: dict[str, str] = {
    "model empty": "",
    "model whitespace": "   ",
    "model 201 chars": "x" * 201,
    "model with a tab": "a\tb",
    "model with ESC": "a\x1b[31mb",
    "model ../x": "../x",
    "model ..": "..",
    "model zero-width space": "a\u200bb",
    "model bidi override": "a\u202eb",
    "model no-break space": "a\u00a0b",
    "model lone combining mark": "\u0301a",
    "model variation selector": "a\ufe0f",
    # What the byte 0xe9 (Latin-1 "é") on a UTF-8 command line becomes; the API gets the same str.
    "model non-UTF-8 byte": "caf\udce9",
}

#: App numbers as typed on the command line.
BAD_APP_NUMS: dict[str, str] = {
    "app_num 0": "0",
    "app_num -1": "-1",
    "app_num 1e3": "1e3",
    "app_num abc": "abc",
    "app_num 1.5": "1.5",
    "app_num 1000001": "1000001",
    "app_num 10**30": "1" + "0" * 30,
    "app_num 5,000 digits": "9" * 5000,  # past int()'s 4,300-digit limit: its ValueError was a traceback
}

#: A number past Python's 4,300-digit ``int()`` limit, for every reader that meets one.
LONG_NUMBER = "9" * 5000
_LONG_ROW = f'[{{"model": "n", "app_number": 2, "backend_port": {LONG_NUMBER}, "frontend_port": 8101}}]'
#: Input files with a 5,000-digit number, and the invocations that read them.
LONG_NUMBER_INPUTS: dict[str, tuple[dict[str, bytes], tuple[tuple[str, ...], ...]]] = {
    "5,000-digit app_num in a key list": (
        {"keys.txt": f"n {LONG_NUMBER}\n".encode()},
        (("get-many", "keys.txt"), ("release-many", "keys.txt")),
    ),
    "5,000-digit app_num in a JSON key list": (
        {"keys.json": f'[{{"model": "n", "app_num": {LONG_NUMBER}}}]'.encode()},
        (("get-many", "keys.json", "--format", "json"), ("release-many", "keys.json", "--format", "jsonl")),
    ),
    "5,000-digit port": (
        {},
        (("reserve", LONG_NUMBER), ("reserve", f"6000-{LONG_NUMBER}"), ("unreserve", LONG_NUMBER)),
    ),
    "5,000-digit port in port_config.json": (
        {"cfg.json": _LONG_ROW.encode()},
        (("import", "cfg.json"), ("--config", "cfg.json", "get", "n", "2")),
    ),
    "5,000-digit number in a compose file": (
        {
            "long1.yaml": f"services:\n  web:\n    image: x\n    ports:\n      - target: {LONG_NUMBER}\n".encode(),
            "long2.yaml": f"x-n: {LONG_NUMBER}\nservices:\n  web:\n    image: x\n".encode(),
        },
        (("compose-check", "long1.yaml"), ("compose-check", "long2.yaml")),
    ),
}

#: New model names that look the same as ``model_a`` or ``model-a``, which the ledger holds (``core/names.py``).
LOOK_ALIKES: dict[str, str] = {
    "look-alike: Cyrillic a": "model_\u0430",
    "look-alike: Greek omicron": "m\u03bfdel_a",
    "look-alike: fullwidth m": "\uff4dodel_a",
    "look-alike: U+2010 hyphen": "model\u2010a",
    "look-alike: capital I for l": "modeI_a",
}


def _with_model_a(directory: Path) -> None:
    (directory / LEDGER).write_bytes(
        _ledger_text(_row(), _row("model-a", 1, 5005, 8005), _row("model_a", 1, 5003, 8003))
    )


#: Files a command writes that are symbolic links: refused, the file linked to never written or created.
_VICTIM = b"root:x:0:0:root:/root:/bin/bash\n"
SYMLINKED_OUTPUTS: dict[str, tuple[str, ...]] = {
    "dotenv": ("dotenv", "n", "2", "out.env"),
    "dotenv --replace": ("dotenv", "n", "2", "out.env", "--replace"),
    "export": ("export", "-o", "out.env"),
    "export --format csv": ("export", "--format", "csv", "-o", "out.env"),
}

#: App numbers as an API caller might pass them.
BAD_API_APP_NUMS: dict[str, object] = {
    "app_num 0": 0,
    "app_num -1": -1,
    "app_num 1e3": "1e3",
    "app_num abc": "abc",
    "app_num 1.5": 1.5,
    "app_num 1000001": 1_000_001,
    "app_num 10**30": 10**30,
    "app_num True": True,
    "app_num None": None,
    'app_num "1"': "1",
}


# --- cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One row of the matrix: a hostile input given to one command (or API method)."""

    hostile: str
    front_end: str  # "cli" or "api"
    command: str  # the CLI command, or the API method
    setup: Callable[[Path], None]
    argv: tuple[str, ...] = ()  # CLI: everything after the script name, run in the case directory
    call: Callable[[], object] | None = None  # API: run in a forked child, in the case directory
    unprivileged: bool = False

    @property
    def label(self) -> str:
        """How a test id or a failure names the case."""
        what = " ".join(self.argv) if self.front_end == "cli" else self.command
        return f"{self.hostile} | {self.front_end} {what}"


@dataclass(frozen=True)
class Outcome:
    """What a case did, and whether that is a clean failure."""

    case: Case
    exit_code: int | None
    error_lines: tuple[str, ...]
    changed: tuple[str, ...]
    problem: str  # empty when the case passed

    @property
    def passed(self) -> bool:
        """``True`` when the input was refused cleanly and nothing changed."""
        return not self.problem


def _files(**contents: bytes) -> Callable[[Path], None]:
    def setup(directory: Path) -> None:
        for name, data in contents.items():
            (directory / name.replace("__", "/")).write_bytes(data)

    return setup


def _with_valid_ledger(directory: Path) -> None:
    (directory / LEDGER).write_bytes(VALID)
    (directory / COMPOSE).write_bytes(_COMPOSE_TEXT)


def _ledger_is_directory(directory: Path) -> None:
    (directory / LEDGER).mkdir()


def _dangling_symlink_missing_dir(directory: Path) -> None:
    (directory / LEDGER).symlink_to(directory / "gone" / LEDGER)


def _symlink_loop(directory: Path) -> None:
    (directory / LEDGER).symlink_to(LEDGER)


def _unreadable(directory: Path) -> None:
    (directory / LEDGER).write_bytes(VALID)
    (directory / LEDGER).chmod(0)


def _read_only_dir(directory: Path) -> None:
    (directory / LEDGER).write_bytes(_NEEDS_WRITING)
    (directory / f"{LEDGER}.lock").touch()  # an existing lock file must not help a write through
    directory.chmod(0o555)


def _missing_dir(directory: Path) -> None:
    pass  # the ledger path names "gone/portalloc.json"


def _fifo(directory: Path) -> None:
    os.mkfifo(directory / LEDGER)  # a reader that opens it blocking would hang for ever


def _device(directory: Path) -> None:
    (directory / LEDGER).symlink_to("/dev/zero")  # endless bytes: a reader without a cap fills memory


def _huge(directory: Path) -> None:
    with (directory / LEDGER).open("wb") as handle:
        handle.truncate(33 * 1024 * 1024)  # sparse: past the 32 MiB cap without writing 33 MB


#: Ledger paths that cannot be used, with how to make them and the ledger path to pass.
BAD_PATHS: dict[str, tuple[Callable[[Path], None], str, bool]] = {
    "ledger is a directory": (_ledger_is_directory, LEDGER, False),
    "ledger symlink into a missing directory": (_dangling_symlink_missing_dir, LEDGER, False),
    "ledger symlink loop": (_symlink_loop, LEDGER, False),
    "ledger in a missing directory": (_missing_dir, f"gone/{LEDGER}", False),
    "ledger unreadable (mode 000)": (_unreadable, LEDGER, True),
    "ledger is a FIFO": (_fifo, LEDGER, False),
    "ledger is /dev/zero (symlink)": (_device, LEDGER, False),
    "ledger is 33 MB": (_huge, LEDGER, False),
}

#: Every command's invocations that read the ledger (first) and that write it.
LEDGER_COMMANDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "get": (("get", "m", "1"), ("get", "n", "2")),
    "list": (("list",), ("list", "--json")),
    "check": (("check",),),
    "stats": (("stats",), ("stats", "--json")),
    "release": (("release", "m", "1"),),
    "cleanup": (("cleanup", "--apps-dir", "."), ("cleanup", "--apps-dir", ".", "--dry-run")),
    "fmt": (("fmt",), ("fmt", "--check")),
    "repair": (("repair",), ("repair", "--dry-run")),
    "merge-driver": (("merge-driver", "base.json", LEDGER, "theirs.json"),),
    "env": (("env", "m", "1"), ("env", "n", "2")),
    "run": (("run", "m", "1", "--", "true"), ("run", "n", "2", "--", "true")),
    "dotenv": (("dotenv", "n", "2", "out.env"),),
    "status": (("status",), ("status", "--json")),
    "compose-check": (("compose-check", COMPOSE),),
    "init": (("init",),),
    "policy": (("policy",), ("policy", "set", "--step", "4")),
    "reserve": (("reserve", "6379"),),
    "unreserve": (("unreserve", "6379"),),
    "pool": (("pool", "list"), ("pool", "add", "p", "--pairs", "50-60")),
    "host": (("host", "sync"), ("host", "recover")),
}
#: The invocations that must write (a read-only directory refuses them).
WRITING_COMMANDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "get": (("get", "n", "2"),),
    "release": (("release", "m", "1"),),
    "cleanup": (("cleanup", "--apps-dir", "."),),
    "fmt": (("fmt",),),
    "repair": (("repair",),),
    "merge-driver": (("merge-driver", "base.json", LEDGER, "theirs.json"),),
    "env": (("env", "n", "2"),),
    "run": (("run", "n", "2", "--", "true"),),
    "dotenv": (("dotenv", "n", "2", "out.env"),),
    "policy": (("policy", "set", "--max-port", "60000"),),
    "reserve": (("reserve", "6379"),),
    "pool": (("pool", "add", "p", "--pairs", "50-60"),),
}
#: Commands that take ``MODEL APP_NUM`` or ``--model``.
KEY_COMMANDS: dict[str, Callable[[str, str], tuple[str, ...]]] = {
    "get": lambda model, app_num: ("get", model, app_num),
    "release": lambda model, app_num: ("release", model, app_num),
    "env": lambda model, app_num: ("env", model, app_num),
    "run": lambda model, app_num: ("run", model, app_num, "--", "true"),
    "dotenv": lambda model, app_num: ("dotenv", model, app_num, "out.env"),
}
MODEL_FILTER_COMMANDS: dict[str, Callable[[str], tuple[str, ...]]] = {
    "list": lambda model: ("list", "--model", model),
    "cleanup": lambda model: ("cleanup", "--apps-dir", ".", "--model", model),
    "status": lambda model: ("status", "--model", model),
    "compose-check": lambda model: ("compose-check", COMPOSE, "--model", model, "--app", "1"),
}


def cli_commands() -> list[str]:
    """The commands ``portalloc`` has right now."""
    import click

    from portalloc.cli.main import cli

    return cli.list_commands(click.Context(cli))


def _present(commands: dict[str, Any], have: set[str]) -> Iterator[tuple[str, Any]]:
    return ((name, value) for name, value in commands.items() if name in have)


def cli_cases() -> list[Case]:
    """Every CLI row of the matrix, for the commands that exist."""
    have = set(cli_commands())
    cases: list[Case] = []

    def add(hostile: str, command: str, setup: Callable[[Path], None], argv: Iterable[str], **kw: Any) -> None:
        cases.append(Case(hostile, "cli", command, setup, tuple(argv), **kw))

    ledger_opt = ("--ledger", LEDGER)
    for hostile, model in BAD_MODELS.items():
        for command, make in _present(KEY_COMMANDS, have):
            add(hostile, command, _with_valid_ledger, (*ledger_opt, *make(model, "1")))
        for command, make_filter in _present(MODEL_FILTER_COMMANDS, have):
            add(hostile, command, _with_valid_ledger, (*ledger_opt, *make_filter(model)))
    for hostile, app_num in BAD_APP_NUMS.items():
        for command, make in _present(KEY_COMMANDS, have):
            add(hostile, command, _with_valid_ledger, (*ledger_opt, *make("m", app_num)))
    for hostile, data in BAD_LEDGERS.items():
        setup = _files(**{LEDGER: data, "base.json": VALID, "theirs.json": VALID, COMPOSE: _COMPOSE_TEXT})
        for command, invocations in _present(LEDGER_COMMANDS, have):
            for argv in invocations:
                add(hostile, command, setup, (*ledger_opt, *argv))
    for hostile, (make_path, ledger, unprivileged) in BAD_PATHS.items():
        for command, invocations in _present(LEDGER_COMMANDS, have):
            if command == "merge-driver":
                continue  # git hands it three real files; its own bad-file rows are above
            for argv in invocations:
                setup = _chain(make_path, _files(**{COMPOSE: _COMPOSE_TEXT}))
                add(hostile, command, setup, ("--ledger", ledger, *argv), unprivileged=unprivileged)
    for command, invocations in _present(WRITING_COMMANDS, have):
        setup = _chain(_read_only_dir_base_files, _read_only_dir)
        for argv in invocations:
            add("ledger dir read-only (write needed)", command, setup, (*ledger_opt, *argv), unprivileged=True)
    if "get" in have:
        for hostile, data in BAD_CONFIGS.items():
            add(hostile, "get", _files(**{"bad.json": data}), (*ledger_opt, "--config", "bad.json", "get", "n", "2"))
        config_dir = _chain(_with_valid_ledger, lambda d: (d / "cfg").mkdir())
        add("config is a directory", "get", config_dir, (*ledger_opt, "--config", "cfg", "get", "n", "2"))
        add("config missing", "get", _with_valid_ledger, (*ledger_opt, "--config", "none.json", "get", "n", "2"))
        config_fifo = _chain(_with_valid_ledger, lambda d: os.mkfifo(d / "fifo.json"))
        add("config is a FIFO", "get", config_fifo, (*ledger_opt, "--config", "fifo.json", "get", "n", "2"))
        for value in ("-1", "nan", "abc", ""):
            argv = (*ledger_opt, "--lock-timeout", value, "get", "n", "2")
            add(f"--lock-timeout {value!r}", "get", _with_valid_ledger, argv)
        add("--ledger ''", "get", _with_valid_ledger, ("--ledger", "", "get", "n", "2"))
    if "cleanup" in have:
        add("--apps-dir missing", "cleanup", _with_valid_ledger, (*ledger_opt, "cleanup", "--apps-dir", "none"))
        # "." holds no m/app1: the wrong level, refused with --model and predicted by --dry-run alike.
        for extra in (("--model", "m"), ("--model", "m", "--dry-run"), ("--dry-run",)):
            argv = (*ledger_opt, "cleanup", "--apps-dir", ".", *extra)
            add("--apps-dir with no app of the ledger", "cleanup", _with_valid_ledger, argv)
    for hostile, model in LOOK_ALIKES.items():
        for command, make in _present(KEY_COMMANDS, have):
            if command != "release":  # releasing a key nobody holds is its own row
                add(hostile, command, _with_model_a, (*ledger_opt, *make(model, "1")))
        keys = _chain(_with_model_a, _files(**{"keys.txt": f"n 1\n{model} 2\n".encode()}))
        if "get-many" in have:
            add(hostile, "get-many", keys, (*ledger_opt, "get-many", "keys.txt"))
        if "pool" in have:
            add(hostile, "pool", _with_model_a, (*ledger_opt, "pool", "add", model, "--pairs", "50-60"))
    if "release" in have:
        add("release a key with no pair", "release", _with_valid_ledger, (*ledger_opt, "release", "n", "2"))
    if "git-setup" in have:
        add("git-setup outside a git repository", "git-setup", _with_valid_ledger, (*ledger_opt, "git-setup"))
    if "compose-check" in have:
        for hostile, data in HOSTILE_COMPOSE.items():
            setup = _files(**{LEDGER: VALID, COMPOSE: data})
            add(hostile, "compose-check", setup, (*ledger_opt, "compose-check", COMPOSE))
        to_zero = _chain(_with_valid_ledger, lambda d: (d / "zero.yaml").symlink_to("/dev/zero"))
        add("compose is /dev/zero", "compose-check", to_zero, (*ledger_opt, "compose-check", "zero.yaml"))
        no_ledger = _files(**{COMPOSE: _COMPOSE_TEXT})
        add("compose-check without a ledger", "compose-check", no_ledger, (*ledger_opt, "compose-check", COMPOSE))
    if "dotenv" in have:
        for hostile, data in HOSTILE_DOTENV.items():
            setup = _files(**{LEDGER: VALID, "out.env": data})
            add(hostile, "dotenv", setup, (*ledger_opt, "dotenv", "n", "2", "out.env"))
        add("dotenv target /dev/null", "dotenv", _with_valid_ledger, (*ledger_opt, "dotenv", "n", "2", "/dev/null"))
        read_only = _chain(_with_valid_ledger, lambda d: (d / "ro").mkdir(0o555))
        add(
            "dotenv target in a read-only dir",
            "dotenv",
            read_only,
            (*ledger_opt, "dotenv", "n", "2", "ro/out.env"),
            unprivileged=True,
        )
    for hostile, (inputs, invocations) in LONG_NUMBER_INPUTS.items():
        for argv in invocations:
            command = next(word for word in argv if not word.startswith("-") and word != "cfg.json")
            if command in have:
                add(hostile, command, _chain(_with_valid_ledger, _files(**inputs)), (*ledger_opt, *argv))
    for argv in SYMLINKED_OUTPUTS.values():
        if argv[0] in have:
            add("output a symlink to another file", argv[0], _symlinked_output, (*ledger_opt, *argv))
            add("output a dangling symlink", argv[0], _dangling_output, (*ledger_opt, *argv))
    # A command nobody wrote rows for still gets the two rows every command must pass.
    known = {*LEDGER_COMMANDS, "git-setup"}
    for command in sorted(have - known):
        bad = _files(**{LEDGER: BAD_LEDGERS["ledger truncated mid-file"]})
        add("ledger truncated mid-file", command, bad, (*ledger_opt, command))
        add("unknown option", command, _with_valid_ledger, (*ledger_opt, command, "--no-such-option"))
    return cases


def _symlinked_output(directory: Path) -> None:
    _with_valid_ledger(directory)
    (directory / "etc").mkdir()
    (directory / "etc" / "passwd").write_bytes(_VICTIM)  # as a repository's committed link to /etc/passwd
    (directory / "out.env").symlink_to(directory / "etc" / "passwd")


def _dangling_output(directory: Path) -> None:
    _with_valid_ledger(directory)
    (directory / "elsewhere").mkdir()
    (directory / "out.env").symlink_to(directory / "elsewhere" / "created.env")  # must never be created


def _read_only_dir_base_files(directory: Path) -> None:
    (directory / COMPOSE).write_bytes(_COMPOSE_TEXT)
    (directory / "base.json").write_bytes(VALID)
    (directory / "theirs.json").write_bytes(_ledger_text(_row(), _row("t", 1, 5101, 8101)))


def _chain(*steps: Callable[[Path], object]) -> Callable[[Path], None]:
    def setup(directory: Path) -> None:
        for step in steps:
            step(directory)

    return setup


def _service(ledger: str = LEDGER, **kw: Any) -> Any:
    from portalloc.service.facade import PortAllocationService

    return PortAllocationService(ledger, **kw)


#: API methods that read or write the ledger, called on a service over ``portalloc.json``.
API_LEDGER_CALLS: dict[str, Callable[[Any], object]] = {
    "get_or_allocate_ports(new)": lambda s: s.get_or_allocate_ports("n", 2),
    "get_or_allocate_ports(existing)": lambda s: s.get_or_allocate_ports("m", 1),
    "get_ports": lambda s: s.get_ports("m", 1),
    "get_all_allocations": lambda s: s.get_all_allocations(),
    "check_port_conflicts": lambda s: s.check_port_conflicts(),
    "stats": lambda s: s.stats(),
    "release_ports": lambda s: s.release_ports("m", 1),
    "cleanup_orphaned_allocations": lambda s: s.cleanup_orphaned_allocations("."),
}
API_WRITING_CALLS = ("get_or_allocate_ports(new)", "release_ports", "cleanup_orphaned_allocations")
#: API methods that take a key.
API_KEY_CALLS: dict[str, Callable[[Any, Any, Any], object]] = {
    "get_or_allocate_ports": lambda s, model, app_num: s.get_or_allocate_ports(model, app_num),
    "get_ports": lambda s, model, app_num: s.get_ports(model, app_num),
    "release_ports": lambda s, model, app_num: s.release_ports(model, app_num),
    "allocate_many": lambda s, model, app_num: s.allocate_many([("m", 2), (model, app_num)]),
}


def api_cases() -> list[Case]:
    """Every API row of the matrix."""
    cases: list[Case] = []

    def add(hostile: str, command: str, setup: Callable[[Path], None], call: Callable[[], object], **kw: Any) -> None:
        cases.append(Case(hostile, "api", command, setup, call=call, **kw))

    api_models: dict[str, object] = {**BAD_MODELS, "model None": None, "model 5 (int)": 5}
    for hostile, model in api_models.items():
        for name, key_call in API_KEY_CALLS.items():
            add(hostile, name, _with_valid_ledger, _bind(key_call, model, 1))
    for hostile, model in LOOK_ALIKES.items():
        for name in ("get_or_allocate_ports", "allocate_many"):
            add(hostile, name, _with_model_a, _bind(API_KEY_CALLS[name], model, 1))
    for hostile, app_num in BAD_API_APP_NUMS.items():
        for name, key_call in API_KEY_CALLS.items():
            add(hostile, name, _with_valid_ledger, _bind(key_call, "m", app_num))
    for hostile, data in BAD_LEDGERS.items():
        for name, ledger_call in API_LEDGER_CALLS.items():
            add(hostile, name, _files(**{LEDGER: data}), _bind_ledger(ledger_call, LEDGER))
    for hostile, (make_path, ledger, unprivileged) in BAD_PATHS.items():
        for name, ledger_call in API_LEDGER_CALLS.items():
            add(hostile, name, make_path, _bind_ledger(ledger_call, ledger), unprivileged=unprivileged)
    for name in API_WRITING_CALLS:
        add(
            "ledger dir read-only (write needed)",
            name,
            _read_only_dir,
            _bind_ledger(API_LEDGER_CALLS[name], LEDGER),
            unprivileged=True,
        )
    for hostile, data in BAD_CONFIGS.items():
        add(hostile, "get_or_allocate_ports(new)", _files(**{LEDGER: VALID, "bad.json": data}), _new_with_config)
    for value in (-1, float("nan"), "abc", None):
        add(f"lock_timeout={value!r}", "PortAllocationService", _with_valid_ledger, _bind_timeout(value))
    add("apps_dir missing", "cleanup_orphaned_allocations", _with_valid_ledger, _cleanup_missing_apps_dir)
    for name, wrong_level in _CLEANUP_WRONG_LEVEL.items():
        add("apps_dir with no app of the ledger", name, _with_valid_ledger, wrong_level)
    return cases


def _bind(key_call: Callable[[Any, Any, Any], object], model: object, app_num: object) -> Callable[[], object]:
    return lambda: key_call(_service(), model, app_num)


def _bind_ledger(ledger_call: Callable[[Any], object], ledger: str) -> Callable[[], object]:
    return lambda: ledger_call(_service(ledger))


def _bind_timeout(value: object) -> Callable[[], object]:
    return lambda: _service(lock_timeout=value).get_or_allocate_ports("n", 2)


def _new_with_config() -> object:
    return _service(config_file="bad.json").get_or_allocate_ports("n", 2)


def _cleanup_missing_apps_dir() -> object:
    return _service().cleanup_orphaned_allocations("none")


#: ``cleanup_orphaned_allocations`` of an apps dir that holds no app of the ledger (the wrong level).
_CLEANUP_WRONG_LEVEL: dict[str, Callable[[], object]] = {
    "cleanup_orphaned_allocations(model)": lambda: _service().cleanup_orphaned_allocations(".", "m"),
    "cleanup_orphaned_allocations(model, dry_run)": lambda: _service().cleanup_orphaned_allocations(
        ".", "m", dry_run=True
    ),
    "cleanup_orphaned_allocations(dry_run)": lambda: _service().cleanup_orphaned_allocations(".", dry_run=True),
}


def all_cases() -> list[Case]:
    """The whole matrix: CLI rows, then API rows."""
    return cli_cases() + api_cases()


# --- running ----------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``root`` (symlinks not followed) with its kind, mode and content hash.

    ``*.lock`` files are left out: taking the lock may create the sidecar, and it
    holds no data.
    """
    entries: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            if name.endswith(".lock") and path.is_file() and not path.is_symlink():
                continue
            info = os.lstat(path)
            key = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                entries[key] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[key] = ("dir", stat.S_IMODE(info.st_mode))
            elif not stat.S_ISREG(info.st_mode):  # a FIFO: opening it to hash it would block
                entries[key] = ("special", stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode))
            else:
                entries[key] = ("file", stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, _digest(path, info))
    entries["."] = ("dir", stat.S_IMODE(os.lstat(root).st_mode))
    return entries


def _digest(path: Path, info: os.stat_result) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except PermissionError:  # not root: fall back to what stat can see
        return f"size={info.st_size} mtime={info.st_mtime_ns}"


@contextmanager
def _case_directory(base: Path, index: int) -> Iterator[Path]:
    directory = base / f"case{index:03d}"
    directory.mkdir()
    try:
        yield directory
    finally:
        directory.chmod(0o755)  # the read-only-directory case made it 555
        shutil.rmtree(directory, ignore_errors=True)


def run_case(case: Case, base: Path, index: int, *, runner: str = "script") -> Outcome:
    """Set the case up in a fresh directory under ``base``, run it, and judge it.

    ``runner`` is ``"script"`` (exec the installed ``portalloc``) or ``"fork"`` (call its
    entry point, ``portalloc.cli.entry.main``, in a forked child: the same code without
    interpreter start-up, for the test suite). API cases always run forked.
    """
    with _case_directory(base, index) as directory:
        case.setup(directory)
        before = snapshot(directory)
        if case.front_end == "api":
            exit_code, lines, problem = _run_api(case, directory)
        else:
            run = _run_script if runner == "script" else _run_entry_point
            exit_code, stdout, stderr = run(case, directory)
            lines = tuple(stderr.splitlines())
            problem = _judge_cli(case, exit_code, stdout, stderr)
        after = snapshot(directory)
    changed = tuple(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))
    if changed and not problem:
        problem = f"changed {', '.join(changed)}"
    return Outcome(case, exit_code, lines, changed, problem)


def _judge_cli(case: Case, exit_code: int | None, stdout: str, stderr: str) -> str:
    lines = stderr.splitlines()
    if exit_code is None:
        return "hung for 60 s"
    if "Traceback" in stderr:
        return "printed a traceback"
    if exit_code == 0:
        return "exit 0"
    if len(lines) != 1 or not lines[0].startswith("Error: "):
        return f"stderr has {len(lines)} lines, expected one 'Error: …' line"
    return ""


def _run_script(case: Case, directory: Path) -> tuple[int | None, str, str]:
    try:
        done = subprocess.run(
            [portalloc_script(), *case.argv],
            cwd=directory,
            capture_output=True,
            text=True,
            errors="replace",
            env=child_env(),
            timeout=60,
            # Only ever called while this process has no other thread (see run_matrix).
            preexec_fn=obey_file_permissions if case.unprivileged else None,
        )
    except subprocess.TimeoutExpired:
        return None, "", ""
    return done.returncode, done.stdout, done.stderr


def _run_entry_point(case: Case, directory: Path) -> tuple[int | None, str, str]:
    """Run ``portalloc ARGV`` as the console script would, but in a fork of this process."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.close(out_read)
            os.close(err_read)
            os.chdir(directory)
            for name in PORTALLOC_ENV:
                os.environ.pop(name, None)
            if case.unprivileged:
                obey_file_permissions()
            sys.stdout = io.TextIOWrapper(io.FileIO(out_write, "w"), encoding="utf-8", line_buffering=True)
            sys.stderr = io.TextIOWrapper(io.FileIO(err_write, "w"), encoding="utf-8", line_buffering=True)
            sys.argv = ["portalloc", *case.argv]
            from portalloc.cli.entry import main

            try:
                main()
                code = 0
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            except BaseException:  # what the interpreter would print for the installed script
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(out_write)
    os.close(err_write)
    # Drain both pipes at once so a chatty child cannot block on a full one.
    chunks: dict[int, list[bytes]] = {out_read: [], err_read: []}
    open_fds = [out_read, err_read]
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], 60)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            break
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                open_fds.remove(fd)
    for fd in (out_read, err_read):
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    exit_code = os.waitstatus_to_exitcode(status) if not open_fds else None
    stdout, stderr = (b"".join(chunks[fd]).decode("utf-8", "replace") for fd in (out_read, err_read))
    return exit_code, stdout, stderr


def _run_api(case: Case, directory: Path) -> tuple[int | None, tuple[str, ...], str]:
    assert case.call is not None
    call = case.call

    def work() -> object:
        os.chdir(directory)
        return call()

    outcome = run_forked(work, unprivileged=case.unprivileged)
    if "value" in outcome:
        return None, (), f"returned {outcome['value'][:80]}"
    message = outcome["message"]
    lines = (f"{outcome['error']}: {message}",)
    if not outcome["portalloc"]:
        return None, lines, f"raised {outcome['error']}, not a PortallocError"
    if "\n" in message or not message.strip():
        return None, lines, "message is not one line"
    return None, lines, ""


def run_matrix(cases: list[Case] | None = None, *, runner: str = "script", workers: int = 4) -> list[Outcome]:
    """Run every case and return the outcomes, in order.

    With the ``"script"`` runner the CLI cases run ``workers`` at a time; forks (API
    cases, the ``"fork"`` runner, dropping permissions) happen one by one while this
    process has no other thread.
    """
    cases = all_cases() if cases is None else cases
    if runner not in ("script", "fork"):
        raise ValueError(f"runner must be 'script' or 'fork', not {runner!r}")
    # Warm what the commands import lazily (every command's module, the service), so that each
    # forked child does not redo it: with ~1,700 forked cases, re-importing was ~15 % of the run.
    import click

    import portalloc.service.facade  # noqa: F401
    from portalloc.cli.main import cli

    context = click.Context(cli)
    for name in cli.list_commands(context):
        cli.get_command(context, name)

    base = Path(tempfile.mkdtemp(prefix="portalloc-bad-input-"))
    try:
        indexed = list(enumerate(cases))
        parallel = [(i, c) for i, c in indexed if runner == "script" and c.front_end == "cli" and not c.unprivileged]
        serial = [(i, c) for i, c in indexed if (i, c) not in parallel]
        outcomes = {i: run_case(case, base, i, runner=runner) for i, case in serial}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = pool.map(lambda ic: run_case(ic[1], base, ic[0], runner=runner), parallel)
            outcomes.update(zip([i for i, _ in parallel], done, strict=True))
        return [outcomes[i] for i, _ in indexed]
    finally:
        shutil.rmtree(base, ignore_errors=True)
