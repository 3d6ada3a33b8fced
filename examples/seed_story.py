"""The story portalloc was built for, before and after, on a fresh ledger.

Before: ports were computed from the app number alone, so every model's app1 got
5001/8001. After: every (model, app) asks portalloc and gets its own pair.

    python examples/seed_story.py            # uses a temporary ledger (and host lease store)
    python examples/seed_story.py --ledger portalloc.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from portalloc import PortAllocationService

MODELS = ("model_a", "model_b", "model_c")


def old_ports(app_num: int) -> tuple[int, int]:
    """The platform's old rule: ports from the app number alone."""
    return 5000 + 2 * app_num - 1, 8000 + 2 * app_num - 1


def report(title: str, pairs: dict[str, tuple[int, int]]) -> bool:
    print(title)
    for model, (backend, frontend) in pairs.items():
        print(f"  {model}/app1: backend {backend}, frontend {frontend}")
    backends = [b for b, _ in pairs.values()]
    frontends = [f for _, f in pairs.values()]
    clean = True
    for role, ports in (("backend", backends), ("frontend", frontends)):
        if len(set(ports)) == len(ports):
            print(f"  All {role} ports are unique")
        else:
            print(f"  Duplicate {role} ports: {sorted({p for p in ports if ports.count(p) > 1})}")
            clean = False
    return clean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=Path, help="ledger file (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        ledger = args.ledger or Path(scratch) / "portalloc.json"
        report("Before (ports from app_num alone):", {model: old_ports(1) for model in MODELS})
        print()
        # A temporary ledger's leases go in a temporary store too: in this user's own store they would
        # outlive the ledger, and the next run would (rightly) skip the ports they hold.
        service = PortAllocationService(ledger, state_dir=None if args.ledger else Path(scratch) / "state")
        after = {model: service.get_or_allocate_ports(model, 1).ports for model in MODELS}
        clean = report(f"After (portalloc, ledger {ledger}):", after)
        conflicts = service.check_port_conflicts()
        if conflicts:
            for conflict in conflicts:
                print(f"  Conflict: {conflict.describe()}")
        else:
            print("  No conflicts found")
    return 0 if clean and not conflicts else 1


if __name__ == "__main__":
    sys.exit(main())
