"""``portalloc.server.run``: the listening sockets and the token file."""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the 'serve' extra is not installed (pip install -e '.[serve]')")

from portalloc.errors import PortallocError
from portalloc.server.run import (
    RESERVED_FDS,
    ROOM_FOR_BURSTS,
    is_loopback,
    load_or_create_token,
    tcp_socket,
    unix_socket,
)


def test_accepted_tcp_connections_have_nagle_off() -> None:
    # With Nagle on, each keep-alive response waited ~40 ms for the client's delayed ACK.
    listener = tcp_socket("127.0.0.1", 0)
    port = listener.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(main())
    assert seen == [1]


def test_a_busy_port_is_one_error_line() -> None:
    with tcp_socket("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        with pytest.raises(PortallocError, match=f"^cannot listen on 127.0.0.1:{port}: Address already in use$"):
            tcp_socket("127.0.0.1", port)


def test_a_stale_unix_socket_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a killed server leaves
    with unix_socket(path) as live:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(PortallocError, match="another server is listening on"):
            unix_socket(path)
        assert live.fileno() >= 0


def test_the_token_is_created_once_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "token"
    token = load_or_create_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_token(path) == token
    assert path.read_text() == token + "\n"


@pytest.mark.parametrize(("content", "why"), [(b"", "one line"), (b"two words\n", "one line"), (b"\xff\n", "one line")])
def test_a_token_file_must_hold_one_token(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(PortallocError, match=why):
        load_or_create_token(path)


def test_a_token_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    os.mkfifo(path, 0o600)
    with pytest.raises(PortallocError, match="not a regular file"):
        load_or_create_token(path)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("192.0.2.1", False), ("example.com", False), ("localhost.", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux's prlimit")
@pytest.mark.parametrize(
    ("limit", "wanted", "budget"),
    [("1024:1024", 1000, 1024 - RESERVED_FDS - ROOM_FOR_BURSTS),
     ("1000:4096", 5000, 4096 - RESERVED_FDS - ROOM_FOR_BURSTS),
     ("1000:4096", 100, 100)],
)  # fmt: skip
def test_the_connection_budget_raises_the_soft_limit_and_leaves_room(limit: str, wanted: int, budget: int) -> None:
    # Past the descriptor limit every accept fails (and asyncio logs a traceback per try).
    code = f"from portalloc.server.run import connection_budget; print(connection_budget({wanted}))"
    done = subprocess.run(
        ["prlimit", f"--nofile={limit}", sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert int(done.stdout) == budget


#: A uid no one on this machine has: its process has no home directory and owns nothing here.
_STRANGER_UID = 54321


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_token_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    """A user who can write the token file's directory must not choose the server's token."""
    path = tmp_path / "token"
    path.write_text("chosen-by-someone-else\n")
    path.chmod(0o600)
    os.chown(path, _STRANGER_UID, _STRANGER_UID)
    with pytest.raises(PortallocError, match=f"is owned by uid {_STRANGER_UID}"):
        load_or_create_token(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming a user with no home directory needs root")
def test_serve_as_a_user_with_no_home_directory_is_one_error_line(tmp_path: Path) -> None:
    """No ``$HOME`` and no password-database entry: ``Path.home()`` raised RuntimeError out of ``serve``."""
    import tempfile

    from click.testing import CliRunner

    import portalloc.cli.commands.serve  # noqa: F401  imported while the interpreter's files are readable
    from portalloc.cli.main import cli
    from portalloc.core.models import Ledger
    from portalloc.storage.ledger import LedgerFile
    from tests.reliability.processes import run_forked

    shared = Path(tempfile.mkdtemp(prefix="portalloc-nohome-"))  # not under pytest's 0700 tmp root
    try:
        shared.chmod(0o777)
        LedgerFile(shared / "l.json").create(Ledger())
        (shared / "l.json").chmod(0o644)

        def serve_as_stranger() -> object:
            os.setgid(_STRANGER_UID)
            os.setuid(_STRANGER_UID)
            result = CliRunner().invoke(
                cli, ["--ledger", str(shared / "l.json"), "serve"], env={"HOME": None, "XDG_CONFIG_HOME": None}
            )
            return result.exit_code, result.stderr, type(result.exception).__name__

        outcome = run_forked(serve_as_stranger)
    finally:
        shutil.rmtree(shared)
    exit_code, stderr, _ = ast.literal_eval(outcome["value"])
    assert exit_code == 1, outcome
    assert stderr.startswith("Error: ") and len(stderr.splitlines()) == 1, stderr
    assert "--token-file" in stderr
