"""``portalloc serve``: the HTTP API (extra ``portalloc[serve]``), safe by default."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from portalloc.cli.context import Settings
from portalloc.cli.params import pass_settings
from portalloc.errors import PortallocError
from portalloc.server.limits import ServerLimits

if TYPE_CHECKING:
    import socket

_LIMITS = ServerLimits()
#: Outside the default policy's ranges (5001-10999), so the server never sits on a port it hands out.
DEFAULT_PORT = 4790


@click.command()
@click.option("--host", default=None, metavar="ADDRESS", help="Address to listen on [default: 127.0.0.1].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"TCP port; 0 picks a free one [default: {DEFAULT_PORT}].",
)
@click.option(
    "--uds",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Listen on this unix socket (mode 0600) instead of TCP; no token unless --token-file.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Bearer token file, created (0600) if missing [default: ~/.config/portalloc/token].",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=_LIMITS.max_connections,
    show_default=True,
    metavar="N",
    help="Open connections at most; past it the one waiting longest for its request is closed.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(0, min_open=True),
    default=_LIMITS.request_timeout,
    show_default=True,
    metavar="SECONDS",
    help="Time a connection has to send a whole request before it is closed.",
)
@click.option(
    "--max-streams",
    type=click.IntRange(0),
    default=_LIMITS.max_streams,
    show_default=True,
    metavar="N",
    help="Open /v1/events streams at most; one more is answered 503.",
)
@pass_settings
def serve(
    settings: Settings,
    host: str | None,
    port: int | None,
    uds: Path | None,
    token_file: Path | None,
    max_connections: int,
    request_timeout: float,
    max_streams: int,
) -> int:
    """Serve the ledger over HTTP until SIGTERM or Ctrl-C.

    Writes need 'Authorization: Bearer <token>' (and 'Content-Type: application/json'
    when they have a body); the Host header must name this server and a browser's
    Origin must too. A non-loopback --host needs an explicit --token-file. Open / in a
    browser for a live page of every allocation.

    \b
    Examples:
      portalloc serve                   # http://127.0.0.1:4790; prints the token file's path
      portalloc serve --uds /tmp/portalloc.sock
    """
    try:
        from portalloc.server import run
    except ImportError as error:
        raise PortallocError(
            f"portalloc serve needs the 'serve' extra ({error.name} is missing): pip install 'portalloc[serve]'"
        ) from None
    if uds is not None and (host is not None or port is not None):
        raise click.UsageError("--uds listens on a unix socket; it cannot be combined with --host or --port")
    host = host or "127.0.0.1"
    loopback = uds is not None or run.is_loopback(host)
    if not loopback and token_file is None:
        raise click.UsageError(f"--host {host} is not a loopback address; name the token with --token-file to allow it")
    service = settings.service()
    # A ledger that cannot be read stops the server here, as it stops any command, before
    # a token file or a socket exists; a missing one is fine (the first write creates it).
    service.ledger()
    token = None
    if token_file is not None or uds is None:
        token_file = token_file or run.default_token_file()
        token = run.load_or_create_token(token_file)
    listener, address = _listen(host, port, uds)

    def announce() -> None:
        click.echo(f"Serving {settings.ledger_path} on {address}")
        click.echo(f"Token file: {token_file}" if token is not None else "No token: the socket is private (mode 0600)")

    try:
        limits = ServerLimits(max_connections, request_timeout, max_streams)
        run.serve(service, listener, token, None if loopback else host, announce, limits)
    finally:
        listener.close()
        if uds is not None:
            uds.unlink(missing_ok=True)
    click.echo("Stopped.")
    return 0


def _listen(host: str, port: int | None, uds: Path | None) -> tuple[socket.socket, str]:
    """The socket to serve on (``uds``, else TCP on ``host``:``port``) and its address as the banner names it."""
    from portalloc.server import run  # serve has checked that the extra is installed

    if uds is not None:
        return run.unix_socket(uds), f"unix:{uds}"
    listener = run.tcp_socket(host, DEFAULT_PORT if port is None else port)
    bound_host, bound_port = listener.getsockname()[:2]
    return listener, f"http://[{bound_host}]:{bound_port}" if ":" in bound_host else f"http://{bound_host}:{bound_port}"
