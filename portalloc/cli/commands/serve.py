"""``portalloc serve``: the HTTP API (extra ``portalloc[serve]``), safe by default."""

from __future__ import annotations

from pathlib import Path

import click

from portalloc.cli.context import Settings, pass_settings
from portalloc.errors import PortallocError

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
@pass_settings
def serve(settings: Settings, host: str | None, port: int | None, uds: Path | None, token_file: Path | None) -> int:
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
    listener = run.unix_socket(uds) if uds is not None else run.tcp_socket(host, DEFAULT_PORT if port is None else port)
    if uds is not None:
        address = f"unix:{uds}"
    else:
        bound_host, bound_port = listener.getsockname()[:2]
        address = f"http://[{bound_host}]:{bound_port}" if ":" in bound_host else f"http://{bound_host}:{bound_port}"

    def announce() -> None:
        click.echo(f"Serving {settings.ledger_path} on {address}")
        click.echo(f"Token file: {token_file}" if token is not None else "No token: the socket is private (mode 0600)")

    try:
        run.serve(service, listener, token, None if loopback else host, announce)
    finally:
        listener.close()
        if uds is not None:
            uds.unlink(missing_ok=True)
    click.echo("Stopped.")
    return 0
