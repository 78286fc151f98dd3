"""The EPMD client side: register this node, find another node's distribution port.

Every request is a 2-byte length and a request byte. A registration lasts as long as
its TCP connection: closing it unregisters the node.
"""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass

DEFAULT_PORT = 4369
ALIVE2_REQ = 120
ALIVE2_X_RESP = 118
ALIVE2_RESP = 121
PORT_PLEASE2_REQ = 122
PORT2_RESP = 119
NODE_TYPE_HIDDEN = 72
PROTOCOL_TCP = 0
# The only handshake this node speaks (OTP 23+; OTP 25 speaks nothing older).
DIST_VERSION = 6


class EpmdError(Exception):
    """EPMD refused a request or answered something unreadable."""


def default_port() -> int:
    """EPMD's port: ``ERL_EPMD_PORT`` if set (as for ``erl``), else 4369."""
    value = os.environ.get("ERL_EPMD_PORT", "")
    return int(value) if value.isdigit() else DEFAULT_PORT


@dataclass
class Registration:
    """A live registration; :meth:`close` unregisters."""

    creation: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass

    async def lost(self) -> None:
        """Returns when EPMD closes the connection (EPMD stopped: the name is gone)."""
        await self.reader.read()


async def register(
    alive: str, port: int, *, host: str = "127.0.0.1", epmd_port: int | None = None
) -> Registration:
    """Register ``alive`` (the part before ``@``) as a hidden node listening on ``port``."""
    name = alive.encode("utf-8")
    reader, writer = await asyncio.open_connection(host, epmd_port or default_port())
    request = (
        struct.pack(
            ">BHBBHHH",
            ALIVE2_REQ,
            port,
            NODE_TYPE_HIDDEN,
            PROTOCOL_TCP,
            DIST_VERSION,
            DIST_VERSION,
            len(name),
        )
        + name
        + struct.pack(">H", 0)  # no extra data
    )
    writer.write(struct.pack(">H", len(request)) + request)
    try:
        tag, result = await reader.readexactly(2)
        if tag == ALIVE2_X_RESP:
            (creation,) = struct.unpack(">I", await reader.readexactly(4))
        elif tag == ALIVE2_RESP:
            (creation,) = struct.unpack(">H", await reader.readexactly(2))
        else:
            raise EpmdError(f"unexpected EPMD reply tag {tag} to ALIVE2_REQ")
    except asyncio.IncompleteReadError:
        writer.close()
        raise EpmdError("EPMD closed the connection while registering") from None
    except EpmdError:
        writer.close()
        raise
    if result != 0:
        writer.close()
        raise EpmdError(f"EPMD refused to register {alive!r} (result {result}): name in use?")
    return Registration(creation, reader, writer)


async def port_please(alive: str, host: str, *, epmd_port: int | None = None) -> int:
    """The distribution port of node ``alive`` on ``host``; :class:`EpmdError` if unknown."""
    name = alive.encode("utf-8")
    reader, writer = await asyncio.open_connection(host, epmd_port or default_port())
    try:
        writer.write(struct.pack(">HB", 1 + len(name), PORT_PLEASE2_REQ) + name)
        tag, result = await reader.readexactly(2)
        if tag != PORT2_RESP:
            raise EpmdError(f"unexpected EPMD reply tag {tag} to PORT_PLEASE2_REQ")
        if result != 0:
            raise EpmdError(f"no node {alive!r} registered with EPMD on {host}")
        port, _type, _protocol, highest, lowest = struct.unpack(
            ">HBBHH", await reader.readexactly(8)
        )
        if not lowest <= DIST_VERSION <= highest:
            raise EpmdError(f"node {alive!r} speaks versions {lowest}..{highest}, not 6")
        return int(port)
    except asyncio.IncompleteReadError:
        raise EpmdError("EPMD closed the connection during PORT_PLEASE2_REQ") from None
    finally:
        writer.close()
