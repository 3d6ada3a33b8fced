"""Scaffold an app directory the way the platform's scaffolding service does.

Creates the app's directory and asks portalloc for its ports in one call
(``allocate_app_dir``: directory first, so a ``portalloc cleanup`` running at the same
moment can never release the new app), then fills ``{{backend_port}}``,
``{{frontend_port}}``, ``{{model}}`` and ``{{app_num}}`` into a docker-compose template
and writes ``<apps-dir>/<model dir>/app<N>/docker-compose.yml``. The model's directory
name comes from ``portalloc.core.keys.model_dir_name`` (``openai/gpt-4o`` → ``openai%2Fgpt-4o``),
the mapping ``cleanup`` and ``compose-check`` use.

    python examples/scaffold.py MODEL APP_NUM --apps-dir generated/apps --ledger portalloc.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portalloc import PortAllocationService, PortallocError

TEMPLATE = Path(__file__).with_name("templates") / "docker-compose.yml.tmpl"


def render(template: str, values: dict[str, object]) -> str:
    """Replace each ``{{name}}`` with its value; an unknown placeholder is an error, not silence."""
    out = template
    for name, value in values.items():
        out = out.replace("{{" + name + "}}", str(value))
    if "{{" in out:
        start = out.index("{{")
        raise ValueError(f"unknown placeholder {out[start : out.index('}}', start) + 2]}")
    return out


def scaffold(service: PortAllocationService, apps_dir: Path, model: str, app_num: int) -> Path:
    """Create the app's directory, allocate (or look up) its ports, write its docker-compose.yml; return its path."""
    pair, target = service.allocate_app_dir(apps_dir, model, app_num)
    compose = target / "docker-compose.yml"
    values = {"backend_port": pair.backend, "frontend_port": pair.frontend, "model": pair.model, "app_num": app_num}
    compose.write_text(render(TEMPLATE.read_text(), values))
    return compose


def main() -> int:
    parser = argparse.ArgumentParser(description="Scaffold an app with its own ports.")
    parser.add_argument("model")
    parser.add_argument("app_num", type=int)
    parser.add_argument("--apps-dir", type=Path, default=Path("generated/apps"))
    parser.add_argument("--ledger", type=Path, default=None)
    args = parser.parse_args()
    args.apps_dir.mkdir(parents=True, exist_ok=True)  # this script owns its apps root; the app dirs are portalloc's
    try:
        compose = scaffold(PortAllocationService(args.ledger), args.apps_dir, args.model, args.app_num)
    except PortallocError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {compose}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
