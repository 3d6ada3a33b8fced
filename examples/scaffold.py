"""Scaffold an app directory the way the platform's scaffolding service does.

Asks portalloc for the app's ports, then fills ``{{backend_port}}``,
``{{frontend_port}}``, ``{{model}}`` and ``{{app_num}}`` into a docker-compose
template and writes ``<apps-dir>/<model>/app<N>/docker-compose.yml``.

    python examples/scaffold.py MODEL APP_NUM --apps-dir generated/apps --ledger portalloc.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portalloc import PortAllocationService, PortallocError
from portalloc.keys import app_dir

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
    """Allocate (or look up) the app's ports and write its docker-compose.yml; return its path."""
    pair = service.get_or_allocate_ports(model, app_num)
    target = app_dir(apps_dir, model, app_num)
    target.mkdir(parents=True, exist_ok=True)
    compose = target / "docker-compose.yml"
    values = {"backend_port": pair.backend, "frontend_port": pair.frontend, "model": model, "app_num": app_num}
    compose.write_text(render(TEMPLATE.read_text(), values))
    return compose


def main() -> int:
    parser = argparse.ArgumentParser(description="Scaffold an app with its own ports.")
    parser.add_argument("model")
    parser.add_argument("app_num", type=int)
    parser.add_argument("--apps-dir", type=Path, default=Path("generated/apps"))
    parser.add_argument("--ledger", type=Path, default=None)
    args = parser.parse_args()
    try:
        compose = scaffold(PortAllocationService(args.ledger), args.apps_dir, args.model, args.app_num)
    except PortallocError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {compose}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
