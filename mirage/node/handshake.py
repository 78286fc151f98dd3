"""The distribution handshake, version 6 (OTP 23+), both as acceptor and initiator.

Handshake messages are length framed (2 bytes over TCP, 4 over TLS). The acceptor B
answers the initiator A's name with a status and a challenge; A proves it knows the
cookie with an MD5 digest of the cookie and B's challenge (as decimal text), and sends
its own challenge, which B answers the same way. Either side closes on a wrong
digest. Digests are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

# Capability flags (lib/kernel/include/dist.hrl).
DFLAG_PUBLISHED = 0x1
DFLAG_EXTENDED_REFERENCES = 0x4
DFLAG_DIST_MONITOR = 0x8
DFLAG_FUN_TAGS = 0x10
DFLAG_DIST_MONITOR_NAME = 0x20
DFLAG_NEW_FUN_TAGS = 0x80
DFLAG_EXTENDED_PIDS_PORTS = 0x100
DFLAG_EXPORT_PTR_TAG = 0x200
DFLAG_BIT_BINARIES = 0x400
DFLAG_NEW_FLOATS = 0x800
DFLAG_DIST_HDR_ATOM_CACHE = 0x2000
DFLAG_UTF8_ATOMS = 0x10000
DFLAG_MAP_TAG = 0x20000
DFLAG_BIG_CREATION = 0x40000
DFLAG_FRAGMENTS = 0x800000
DFLAG_HANDSHAKE_23 = 0x1000000
DFLAG_UNLINK_ID = 0x2000000
DFLAG_NAME_ME = 1 << 33
DFLAG_V4_NC = 1 << 34

#: What OTP 25 requires of every peer; this node requires the same of its peers, so
#: their terms are always ones mirage.etf reads.
MANDATORY = (
    DFLAG_EXTENDED_REFERENCES
    | DFLAG_FUN_TAGS
    | DFLAG_EXTENDED_PIDS_PORTS
    | DFLAG_NEW_FUN_TAGS
    | DFLAG_EXPORT_PTR_TAG
    | DFLAG_BIT_BINARIES
    | DFLAG_NEW_FLOATS
    | DFLAG_UTF8_ATOMS
    | DFLAG_MAP_TAG
    | DFLAG_BIG_CREATION
    | DFLAG_HANDSHAKE_23
)
#: This node's flags. Not DFLAG_PUBLISHED: the node is hidden. Neither the atom cache
#: (DFLAG_DIST_HDR_ATOM_CACHE) nor fragments: peers then send every message whole, in
#: the pass-through format. Monitors by name, so gen_server:call can monitor `mirage`.
FLAGS = MANDATORY | DFLAG_DIST_MONITOR | DFLAG_DIST_MONITOR_NAME | DFLAG_UNLINK_ID | DFLAG_V4_NC


class HandshakeError(Exception):
    """The handshake failed; the connection is to be closed."""


@dataclass(frozen=True)
class Peer:
    """The node at the other end of a completed handshake."""

    name: str
    flags: int
    creation: int


def digest(challenge: int, cookie: bytes) -> bytes:
    """MD5 of the cookie followed by the challenge in decimal."""
    return hashlib.md5(cookie + str(challenge).encode("ascii"), usedforsecurity=False).digest()


# Handshake messages carry a 2-byte length over TCP, a 4-byte one over TLS (inet_tls).
_HEADERS = {2: struct.Struct(">H"), 4: struct.Struct(">I")}
_MAX_MESSAGE = 65535  # the longest (a name) fits a 2-byte length


async def _recv(reader: asyncio.StreamReader, header: int) -> bytes:
    try:
        (size,) = _HEADERS[header].unpack(await reader.readexactly(header))
        if size > _MAX_MESSAGE:
            raise HandshakeError(f"{size}-byte handshake message")
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise HandshakeError("connection closed during the handshake") from None


def _send(writer: asyncio.StreamWriter, message: bytes, header: int) -> None:
    writer.write(_HEADERS[header].pack(len(message)) + message)


def _node_name(raw: bytes) -> str:
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HandshakeError("node name is not UTF-8") from None
    alive, at, host = name.partition("@")
    if not (alive and at and host) or len(raw) > 255:
        raise HandshakeError(f"not a full node name: {name!r}")
    return name


def _check_flags(flags: int, who: str) -> None:
    missing = MANDATORY & ~flags
    if missing:
        raise HandshakeError(f"{who} lacks mandatory capability flags {missing:#x}")
    if flags & DFLAG_NAME_ME:
        raise HandshakeError(f"{who} asks for a dynamic name, which this node cannot give")


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    name: str,
    cookie: bytes,
    creation: int,
    header: int = 2,
) -> Peer:
    """Run the acceptor (B) side on a fresh connection; the peer once it proved the cookie.

    ``header`` is the length prefix's size: 2 over TCP, 4 over TLS.
    """
    message = await _recv(reader, header)
    old_name = False
    try:
        if message[:1] == b"N":
            flags, peer_creation, size = struct.unpack_from(">QIH", message, 1)
            peer_name = _node_name(message[15 : 15 + size])
        elif message[:1] == b"n":
            # OTP 23/24 send this when not using EPMD; it lacks the creation and the
            # high flags, which follow in a complement message.
            _version, flags = struct.unpack_from(">HI", message, 1)
            peer_name = _node_name(message[7:])
            old_name, peer_creation = True, 0
        else:
            raise HandshakeError(f"expected a name message, got tag {message[:1]!r}")
    except struct.error:
        raise HandshakeError("truncated name message") from None
    _check_flags(flags, peer_name)
    _send(writer, b"sok", header)
    challenge = secrets.randbits(32)
    own = name.encode("utf-8")
    _send(writer, b"N" + struct.pack(">QIIH", FLAGS, challenge, creation, len(own)) + own, header)
    if old_name:
        complement = await _recv(reader, header)
        if complement[:1] != b"c" or len(complement) < 9:
            raise HandshakeError("expected a complement message")
        high, peer_creation = struct.unpack_from(">II", complement, 1)
        flags |= high << 32
    reply = await _recv(reader, header)
    if reply[:1] != b"r" or len(reply) != 21:
        raise HandshakeError("expected a challenge reply")
    (peer_challenge,) = struct.unpack_from(">I", reply, 1)
    if not hmac.compare_digest(reply[5:21], digest(challenge, cookie)):
        raise HandshakeError(f"{peer_name} does not know the cookie")
    _send(writer, b"a" + digest(peer_challenge, cookie), header)
    await writer.drain()
    return Peer(peer_name, flags, peer_creation)


async def initiate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    name: str,
    cookie: bytes,
    creation: int,
    peer_name: str,
    header: int = 2,
) -> Peer:
    """Run the initiator (A) side towards ``peer_name``; the peer once it proved the cookie.

    ``header`` is the length prefix's size: 2 over TCP, 4 over TLS.
    """
    own = name.encode("utf-8")
    _send(writer, b"N" + struct.pack(">QIH", FLAGS, creation, len(own)) + own, header)
    status = await _recv(reader, header)
    if status == b"salive":
        # The peer still has a connection from an earlier run of this node: replace it.
        _send(writer, b"strue", header)
    elif status not in (b"sok", b"sok_simultaneous"):
        raise HandshakeError(f"{peer_name} refused the connection: {status[1:]!r}")
    message = await _recv(reader, header)
    if message[:1] != b"N" or len(message) < 19:
        raise HandshakeError("expected a version 6 challenge")
    flags, challenge, peer_creation, size = struct.unpack_from(">QIIH", message, 1)
    answered = _node_name(message[19 : 19 + size])
    if answered != peer_name:
        raise HandshakeError(f"dialled {peer_name} but {answered} answered")
    _check_flags(flags, peer_name)
    own_challenge = secrets.randbits(32)
    _send(writer, b"r" + struct.pack(">I", own_challenge) + digest(challenge, cookie), header)
    try:
        ack = await _recv(reader, header)
    except HandshakeError:
        # What an Erlang node does when our digest is wrong: it just closes.
        raise HandshakeError(f"{peer_name} closed the connection: a different cookie?") from None
    if ack[:1] != b"a" or len(ack) != 17:
        raise HandshakeError("expected a challenge ack")
    if not hmac.compare_digest(ack[1:], digest(own_challenge, cookie)):
        raise HandshakeError(f"{peer_name} does not know the cookie")
    return Peer(peer_name, flags, peer_creation)
