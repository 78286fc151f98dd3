"""The node: a listener, its EPMD registration, the connections, the work pool."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mirage.node import epmd, handshake
from mirage.node.backend import Backend, ServerBackend
from mirage.node.connection import Connection
from mirage.node.requests import SERVED, RequestServer
from mirage.service import Service

# asyncio's default stream buffer (64 KiB) makes reading a multi-megabyte packet a
# long series of pause/resume cycles; a larger one reads an upload in a few steps.
READ_LIMIT = 4 << 20

log = logging.getLogger("mirage.node")


@dataclass
class Config:
    """How to run a node; see ``python -m mirage.node --help`` for each field."""

    name: str
    cookie: bytes = field(repr=False)
    jobs: int = 0
    address: str = "0.0.0.0"
    port: int = 0
    epmd_port: int = 0
    net_ticktime: float = 60.0
    setup_time: float = 7.0
    max_packet: int = 256 * 1024 * 1024
    max_queue: int = 0
    connect: Sequence[str] = ()
    max_handles: int | None = None
    max_bytes: int | None = None
    server_tls: ssl.SSLContext | None = None
    client_tls: ssl.SSLContext | None = None

    @property
    def alive(self) -> str:
        return self.name.partition("@")[0]


class Node:
    """A hidden Erlang node serving the registered names in :data:`SERVED`."""

    def __init__(self, config: Config, backend: Backend | None = None) -> None:
        self.config = config
        jobs = config.jobs or os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mirage-job")
        if backend is None:
            backend = ServerBackend(Service(config.max_handles, config.max_bytes))
        self.requests = RequestServer(backend, self.pool, config.max_queue or 64 * jobs)
        self.connections: dict[str, Connection] = {}
        self.creation = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._registration: epmd.Registration | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._serving: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Listen, then register with EPMD (the name is only published once reachable)."""
        config = self.config
        self._server = await asyncio.start_server(
            self._accepted, config.address, config.port, ssl=config.server_tls, limit=READ_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._registration = await epmd.register(
            config.alive, self.port, epmd_port=config.epmd_port or None
        )
        self.creation = self._registration.creation
        for peer in config.connect:
            self._spawn(self.connect(peer))

    async def stop(self) -> None:
        """Unregister, stop listening, close every connection, drop queued work."""
        if self._registration is not None:
            await self._registration.close()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections.values()):
            conn.close()
        # Closed connections end their serving tasks (releasing their owners' images);
        # only dialling still under way is cancelled.
        if self._serving:
            await asyncio.wait(self._serving, timeout=self.config.setup_time)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def registration_lost(self) -> None:
        """Returns if EPMD drops the registration (for the caller to stop the node)."""
        assert self._registration is not None
        await self._registration.lost()

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- connections --------------------------------------------------------------------

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        try:
            peer = await asyncio.wait_for(
                handshake.accept(
                    reader,
                    writer,
                    name=self.config.name,
                    cookie=self.config.cookie,
                    creation=self.creation,
                    header=4 if self.config.server_tls else 2,
                ),
                self.config.setup_time,
            )
        except (handshake.HandshakeError, asyncio.TimeoutError, OSError) as exc:
            log.warning("refused a connection from %s: %s", address, exc or "handshake timed out")
            writer.close()
            return
        await self._serve(reader, writer, peer)

    async def connect(self, peer_name: str) -> bool:
        """Dial ``peer_name`` (``alive@host``) and serve that connection; False on failure."""
        alive, _, host = peer_name.partition("@")
        try:
            port = await epmd.port_please(alive, host, epmd_port=self.config.epmd_port or None)
            tls = self.config.client_tls
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None, limit=READ_LIMIT
            )
        except (epmd.EpmdError, OSError) as exc:
            log.warning("cannot reach %s: %s", peer_name, exc)
            return False
        try:
            peer = await asyncio.wait_for(
                handshake.initiate(
                    reader,
                    writer,
                    name=self.config.name,
                    cookie=self.config.cookie,
                    creation=self.creation,
                    peer_name=peer_name,
                    header=4 if tls else 2,
                ),
                self.config.setup_time,
            )
        except (handshake.HandshakeError, asyncio.TimeoutError, OSError) as exc:
            log.warning("connection to %s failed: %s", peer_name, exc or "handshake timed out")
            writer.close()
            return False
        self._spawn(self._serve(reader, writer, peer))
        return True

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: handshake.Peer
    ) -> None:
        conn = Connection(
            reader,
            writer,
            peer,
            served=SERVED,
            deliver=self.requests.deliver,
            net_ticktime=self.config.net_ticktime,
            max_packet=self.config.max_packet,
        )
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
        old = self.connections.get(peer.name)
        if old is not None:  # the peer reconnected before we saw the old one go
            old.close()
        self.connections[peer.name] = conn
        log.info("connected to %s", peer.name)
        try:
            await conn.run()
        finally:
            if self.connections.get(peer.name) is conn:
                del self.connections[peer.name]
            self.requests.connection_lost(conn)
            log.info("disconnected from %s", peer.name)
            if task is not None:
                self._serving.discard(task)
