"""``python -m mirage.node --name mirage1@HOST --cookie-file PATH [--jobs N]``.

The cookie comes from ``--cookie-file`` or the ``MIRAGE_COOKIE`` environment variable,
never from the command line (which ``ps`` shows). Prints one line,
``mirage.node ready NAME port=PORT``, once registered with EPMD, and runs until
SIGTERM or SIGINT, then unregisters and exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from mirage import host, output
from mirage.node import epmd
from mirage.node.backend import Backend
from mirage.node.node import Config, Node

log = logging.getLogger("mirage.node")

_NAME = re.compile(r"[A-Za-z0-9_-]+@[A-Za-z0-9_.-]+")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mirage.node", description=__doc__)
    p.add_argument("--name", required=True, help="full node name, alive@host")
    p.add_argument("--cookie-file", type=Path, help="file holding the cookie (else $MIRAGE_COOKIE)")
    p.add_argument("--jobs", type=int, default=0, help="image work threads (default: CPUs)")
    p.add_argument("--address", default="0.0.0.0", help="address to listen on")
    p.add_argument("--port", type=int, default=0, help="distribution port (default: any)")
    p.add_argument(
        "--epmd-port", type=int, default=0, help="EPMD port (default: $ERL_EPMD_PORT or 4369)"
    )
    p.add_argument(
        "--net-ticktime", type=float, default=60.0, help="as the VM's net_ticktime (seconds)"
    )
    p.add_argument(
        "--max-packet", type=int, default=256 * 1024 * 1024, help="largest message, in bytes"
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=0,
        help="calls queued or running at most; more answer overloaded (default: 64 per job)",
    )
    p.add_argument(
        "--connect", action="append", default=[], metavar="NODE", help="dial NODE at start-up"
    )
    p.add_argument("--max-handles", type=int, help="most images held at once (default: no cap)")
    p.add_argument("--max-bytes", type=int, help="most held image memory, bytes (default: no cap)")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate: TLS distribution (inet_tls)")
    p.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    p.add_argument("--tls-ca", type=Path, help="PEM CA bundle that peers' certificates chain to")
    return p


def read_cookie(path: Path | None) -> bytes:
    """The cookie from ``path`` or ``$MIRAGE_COOKIE``, surrounding whitespace stripped."""
    if path is not None:
        cookie = path.read_bytes().strip()
    else:
        cookie = os.environ.get("MIRAGE_COOKIE", "").strip().encode()
    if not cookie:
        raise ValueError("no cookie: pass --cookie-file PATH or set MIRAGE_COOKIE")
    return cookie


def tls_contexts(
    cert: Path | None, key: Path | None, ca: Path | None
) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """Server and client contexts verifying peers against ``ca``; (None, None) without TLS."""
    if cert is None and key is None and ca is None:
        return None, None
    if cert is None or key is None or ca is None:
        raise ValueError("TLS needs all of --tls-cert, --tls-key and --tls-ca")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_cert_chain(str(cert), str(key))
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    client.load_cert_chain(str(cert), str(key))
    return server, client


def config_from(argv: Sequence[str] | None = None) -> Config:
    args = _parser().parse_args(argv)
    if not _NAME.fullmatch(args.name):
        raise ValueError(f"--name must look like alive@host, got {args.name!r}")
    if args.jobs < 0 or args.max_queue < 0 or args.net_ticktime <= 0 or args.max_packet <= 0:
        raise ValueError("--jobs, --max-queue, --net-ticktime and --max-packet must be positive")
    for cap in (args.max_handles, args.max_bytes):
        if cap is not None and cap <= 0:
            raise ValueError("--max-handles and --max-bytes must be positive")
    server_tls, client_tls = tls_contexts(args.tls_cert, args.tls_key, args.tls_ca)
    return Config(
        name=args.name,
        cookie=read_cookie(args.cookie_file),
        jobs=args.jobs,
        address=args.address,
        port=args.port,
        epmd_port=args.epmd_port,
        net_ticktime=args.net_ticktime,
        max_packet=args.max_packet,
        max_queue=args.max_queue,
        connect=tuple(args.connect),
        max_handles=args.max_handles,
        max_bytes=args.max_bytes,
        server_tls=server_tls,
        client_tls=client_tls,
    )


async def serve(config: Config, backend: Backend | None = None, ready: TextIO = sys.stdout) -> int:
    """Run a node until SIGTERM/SIGINT (0) or until EPMD goes away (1)."""
    node = Node(config, backend)
    try:
        await node.start()
    except (OSError, epmd.EpmdError) as exc:
        log.error("cannot start %s: %s", config.name, exc)
        await node.stop()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"mirage.node ready {config.name} port={node.port}", file=ready, flush=True)
    stopped = asyncio.ensure_future(stop.wait())
    lost = asyncio.ensure_future(node.registration_lost())
    await asyncio.wait((stopped, lost), return_when=asyncio.FIRST_COMPLETED)
    status = 0 if stopped.done() else 1
    if status:
        log.error("EPMD closed the registration of %s: stopping", config.name)
    for waiter in (stopped, lost):
        waiter.cancel()
    await node.stop()
    return status


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def main(argv: Sequence[str] | None = None, backend: Backend | None = None) -> int:
    try:
        config = config_from(argv)
    except (ValueError, OSError, ssl.SSLError) as exc:
        print(f"mirage.node: {exc}", file=sys.stderr)
        return 2
    # Everything Python, Pillow or the C libraries under it print, warn or log
    # becomes a line on stderr; stdout carries only the ready line. Descriptors 1 and
    # 2 become pipes read into the sink, which writes to copies of the originals.
    sys.stdout.flush()
    sys.stderr.flush()
    stdout = open(os.dup(1), "w", buffering=1)
    stderr = open(os.dup(2), "w", buffering=1)

    def sink(level: int, line: str) -> None:
        stderr.write(f"mirage.node {_LEVELS[level]} {line}\n")
        stderr.flush()

    host.capture_fd(1, output.INFO, sink)
    host.capture_fd(2, output.ERROR, sink)
    host.setup(sink)
    logging.getLogger().setLevel(logging.INFO)
    return asyncio.run(serve(config, backend, ready=stdout))


if __name__ == "__main__":
    sys.exit(main())
