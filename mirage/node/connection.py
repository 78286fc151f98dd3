"""One distribution connection after its handshake: framing, ticks, control messages.

Packets are a 4-byte length and a body; a zero length is a tick (keep-alive). As this
node offers no atom cache, every body is in the pass-through format: byte 112, the
control message as ETF and, for sends, the message as ETF.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Sequence

from mirage import etf
from mirage.etf import Atom, Pid
from mirage.node.handshake import Peer

log = logging.getLogger("mirage.node")

PASS_THROUGH = 112
TICK = b"\0\0\0\0"

# Control message operations (erl_dist_protocol, "Protocol between Connected Nodes").
LINK = 1
SEND = 2
EXIT = 3
REG_SEND = 6
SEND_TT = 12
REG_SEND_TT = 16
MONITOR_P = 19
DEMONITOR_P = 20
MONITOR_P_EXIT = 21
UNLINK_ID = 35
UNLINK_ID_ACK = 36

NOPROC = Atom("noproc")
_EMPTY = Atom("")

#: Receives (connection, sender pid, registered name, the message's ETF bytes).
#: The message starts at the int's offset in the bytes (not copied out of the packet).
Deliver = Callable[["Connection", Pid, Atom, bytes, int], None]
#: A packet's body as consecutive parts (large binaries are parts of their own).
Parts = Sequence[bytes | bytearray | memoryview]
# Control messages are small: they are decoded from this much of a packet first, so
# that a large message is not copied just to read the control message before it.
_CONTROL_PEEK = 4096
# Packets over this size are read in chunks of this size (Connection._read_body).
_DIRECT_READ = 1 << 18


class ProtocolError(Exception):
    """The peer broke the framing or sent a packet this node cannot read."""


def send_packet(to: Pid, message: object) -> Parts:
    """The body of a SEND of ``message`` to ``to`` (ETF-encoded here, in the caller's thread)."""
    head = bytes((PASS_THROUGH,)) + etf.encode((SEND, _EMPTY, to))
    return [head, *etf.encode_parts(message)]


class Connection:
    """A connected peer. :meth:`run` reads until the connection ends."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
        *,
        served: frozenset[Atom],
        deliver: Deliver,
        net_ticktime: float,
        max_packet: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.served = served
        self.deliver = deliver
        self.net_ticktime = net_ticktime
        self.max_packet = max_packet
        #: The pids holding images made by their calls on this connection, with those
        #: images' handles: released when the connection goes.
        self.owners: dict[Pid, set[int]] = {}
        self.closed = False
        self._last_sent = self._last_received = time.monotonic()

    # --- sending ----------------------------------------------------------------------

    def write(self, parts: Parts) -> None:
        """Send one packet (loop thread only); dropped once the connection is closed."""
        if self.closed:
            return
        size = sum(memoryview(part).nbytes for part in parts)
        self.writer.writelines([struct.pack(">I", size), *parts])
        self._last_sent = time.monotonic()

    def send(self, control: tuple[object, ...]) -> None:
        """Send a control message that has no message part."""
        self.write([bytes((PASS_THROUGH,)) + etf.encode(control)])

    def _tick(self) -> None:
        if not self.closed:
            self.writer.write(TICK)
            self._last_sent = time.monotonic()

    # --- receiving --------------------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch packets until the peer closes, goes silent or misbehaves."""
        ticker = asyncio.create_task(self._ticker())
        try:
            while True:
                try:
                    (size,) = struct.unpack(">I", await self.reader.readexactly(4))
                    if size > self.max_packet:
                        raise ProtocolError(f"{size}-byte packet over the {self.max_packet} cap")
                    body = await self._read_body(size)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self._last_received = time.monotonic()
                if not body:
                    self._tick()  # answered at once, so short peer tick times hold too
                    continue
                try:
                    self._dispatch(body)
                except ProtocolError:
                    raise
                except Exception:  # a bug here must not cost the peer its connection
                    log.exception("error handling a packet from %s", self.peer.name)
        except ProtocolError as exc:
            log.warning("closing the connection to %s: %s", self.peer.name, exc)
        finally:
            ticker.cancel()
            self.close()

    async def _read_body(self, size: int) -> bytes:
        """The next ``size`` bytes. A large packet (an upload) is read in chunks and
        joined: ``readexactly`` lets the stream's buffer grow to the whole packet,
        reallocating and copying it as it grows, before copying it out."""
        if size <= _DIRECT_READ:
            return await self.reader.readexactly(size) if size else b""
        parts: list[bytes] = []
        got = 0
        while got < size:
            part = await self.reader.read(min(size - got, _DIRECT_READ))
            if not part:
                raise asyncio.IncompleteReadError(b"".join(parts), size)
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    async def _ticker(self) -> None:
        # Like net_kernel: tick when we have sent nothing for a quarter of the tick
        # time; give up on a peer silent for the whole tick time.
        interval = self.net_ticktime / 4
        while not self.closed:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if now - self._last_received > self.net_ticktime:
                log.warning("%s silent for %ss: closing", self.peer.name, self.net_ticktime)
                self.close()
                return
            if now - self._last_sent >= interval:
                self._tick()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    def _dispatch(self, body: bytes) -> None:
        if body[0] != PASS_THROUGH:
            raise ProtocolError(f"packet type {body[0]} (only pass-through is negotiated)")
        try:
            control, size = etf.decode_prefix(body[1 : 1 + _CONTROL_PEEK], improper_lists=True)
        except etf.DecodeError:
            try:  # larger than the peek, or broken
                control, size = etf.decode_prefix(body[1:], improper_lists=True)
            except etf.DecodeError as exc:
                raise ProtocolError(f"unreadable control message: {exc}") from None
        if not (isinstance(control, tuple) and control and type(control[0]) is int):
            raise ProtocolError(f"control message is not an operation: {control!r:.200}")
        op = control[0]
        start = 1 + size
        if op in (REG_SEND, REG_SEND_TT) and len(control) >= 4:
            sender, name = control[1], control[3]
            if isinstance(sender, Pid) and isinstance(name, Atom) and name in self.served:
                self.deliver(self, sender, name, body, start)
            else:
                log.debug("dropped a message to %r from %s", name, self.peer.name)
        elif op == MONITOR_P and len(control) == 4:
            self._monitor(*control[1:])
        elif op == LINK and len(control) == 3:
            # This node has no processes to link to; the VM answers such links so.
            self.send((EXIT, control[2], control[1], NOPROC))
        elif op == UNLINK_ID and len(control) == 4:
            self.send((UNLINK_ID_ACK, control[1], control[3], control[2]))
        elif op in (SEND, SEND_TT, DEMONITOR_P):
            # There are no pids here to send to; monitors of served names never
            # fire while the connection is up (the VM reports noconnection after),
            # so neither needs any state.
            pass
        else:
            log.debug("ignored control message %d from %s", op, self.peer.name)

    def _monitor(self, monitoring: object, target: object, ref: object) -> None:
        if isinstance(target, Atom) and target in self.served:
            return
        self.send((MONITOR_P_EXIT, target, monitoring, ref, NOPROC))
