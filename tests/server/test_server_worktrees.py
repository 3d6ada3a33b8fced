"""The HTTP API of a server whose ledger is a linked worktree's copy under ``worktrees: separate``: a real server."""

from __future__ import annotations

from pathlib import Path

from portalloc.core.models import PortPolicy
from portalloc.service.facade import PortAllocationService
from tests.gittools import git, new_repo
from tests.serving import kill_group, start_server


def test_the_http_api_answers_with_the_worktrees_own_pair(tmp_path: Path) -> None:
    main = new_repo(tmp_path / "main")
    service = PortAllocationService(main / "portalloc.json", probe=False)
    service.create_ledger(PortPolicy(worktrees="separate"))
    service.get_or_allocate_ports("model_a", 1)
    git(main, "add", "portalloc.json")
    git(main, "commit", "-q", "-m", "ledger")
    tree = tmp_path / "wt1"
    git(main, "worktree", "add", "-q", str(tree), "-b", "wt1")
    committed = (tree / "portalloc.json").read_bytes()
    server = start_server(tmp_path, "--no-probe", ledger=tree / "portalloc.json", create=False)
    try:
        with server.client() as client:
            assert client.get("/v1/allocations/model_a/1").status_code == 404  # reads never choose one
            first = client.put("/v1/allocations/model_a/1", headers=server.write_headers())
            again = client.put("/v1/allocations/model_a/1", headers=server.write_headers())
            listed = client.get("/v1/allocations").json()
            committed_rows = client.get("/v1/allocations", params={"committed": "true"}).json()
            stats = client.get("/v1/stats").json()
    finally:
        kill_group(server)
    own = {"model": "model_a", "app_num": 1, "backend": 7999, "frontend": 10999, "worktree": str(tree)}
    assert (first.status_code, first.json()) == (201, own)
    assert (again.status_code, again.json()) == (200, own)
    assert listed == [own]
    assert committed_rows == [{**own, "backend": 5001, "frontend": 8001, "worktree": None}]
    assert (stats["worktree"], stats["worktree_pairs"], stats["allocations"]) == (str(tree), 1, 1)
    assert (tree / "portalloc.json").read_bytes() == committed
