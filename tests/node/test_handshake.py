"""The handshake between two ends of this module, and against scripted peers."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest

from mirage.node import handshake
from mirage.node.handshake import FLAGS, HandshakeError, Peer

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _pair() -> tuple[Streams, Streams]:
    a, b = socket.socketpair()
    return await asyncio.open_connection(sock=a), await asyncio.open_connection(sock=b)


def _run(
    acceptor: Callable[[Streams], Awaitable[object]],
    initiator: Callable[[Streams], Awaitable[object]],
) -> tuple[object, object]:
    """Both sides concurrently; each result is its return value or the exception."""

    async def both() -> tuple[object, object]:
        b_side, a_side = await _pair()

        async def guarded(side: Callable[[Streams], Awaitable[object]], ends: Streams) -> object:
            try:
                return await side(ends)
            except HandshakeError as exc:
                return exc
            finally:
                ends[1].close()  # as the node does on failure: the other side sees EOF

        result = await asyncio.wait_for(
            asyncio.gather(guarded(acceptor, b_side), guarded(initiator, a_side)), 10
        )
        return result[0], result[1]

    return asyncio.run(both())


def accept(cookie: bytes) -> Callable[[Streams], Awaitable[object]]:
    return lambda ends: handshake.accept(*ends, name="b@host", cookie=cookie, creation=2)


def initiate(cookie: bytes, peer: str = "b@host") -> Callable[[Streams], Awaitable[object]]:
    return lambda ends: handshake.initiate(
        *ends, name="a@host", cookie=cookie, creation=1, peer_name=peer
    )


def test_digest_is_md5_of_cookie_then_challenge_in_decimal() -> None:
    expected = hashlib.md5(b"secret" + b"4294967295").digest()
    assert handshake.digest(4294967295, b"secret") == expected


def test_same_cookie_connects_both_ends() -> None:
    b, a = _run(accept(b"c"), initiate(b"c"))
    assert b == Peer("a@host", FLAGS, 1)
    assert a == Peer("b@host", FLAGS, 2)


def test_flags_make_a_hidden_node_with_what_otp_25_requires() -> None:
    assert not FLAGS & handshake.DFLAG_PUBLISHED
    assert FLAGS & handshake.MANDATORY == handshake.MANDATORY
    # No atom cache and no fragments: every message arrives whole, pass-through.
    assert not FLAGS & (handshake.DFLAG_DIST_HDR_ATOM_CACHE | handshake.DFLAG_FRAGMENTS)


def test_wrong_cookie_is_refused_by_the_acceptor() -> None:
    b, a = _run(accept(b"right"), initiate(b"wrong"))
    assert isinstance(b, HandshakeError) and "does not know the cookie" in str(b)
    assert isinstance(a, HandshakeError) and "different cookie" in str(a)


def _frame(message: bytes) -> bytes:
    return struct.pack(">H", len(message)) + message


async def _read(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">H", await reader.readexactly(2))
    return await reader.readexactly(size)


def _challenge(name: bytes = b"b@host", flags: int = FLAGS) -> bytes:
    return b"N" + struct.pack(">QIIH", flags, 77, 2, len(name)) + name


def test_wrong_cookie_is_refused_by_the_initiator() -> None:
    # An acceptor that takes any digest but cannot answer ours: A must refuse it.
    async def lax_acceptor(ends: Streams) -> object:
        reader, writer = ends
        await _read(reader)
        writer.write(_frame(b"sok") + _frame(_challenge()))
        reply = await _read(reader)
        (challenge,) = struct.unpack_from(">I", reply, 1)
        writer.write(_frame(b"a" + handshake.digest(challenge, b"other")))
        await writer.drain()
        return None

    _, a = _run(lax_acceptor, initiate(b"mine"))
    assert isinstance(a, HandshakeError) and "does not know the cookie" in str(a)


def test_initiator_refuses_a_node_answering_under_another_name() -> None:
    async def impostor(ends: Streams) -> object:
        reader, writer = ends
        await _read(reader)
        writer.write(_frame(b"sok") + _frame(_challenge(b"c@host")))
        await writer.drain()
        return None

    _, a = _run(impostor, initiate(b"c"))
    assert isinstance(a, HandshakeError) and "c@host answered" in str(a)


def test_initiator_reports_a_refusal_status() -> None:
    async def busy(ends: Streams) -> object:
        await _read(ends[0])
        ends[1].write(_frame(b"snot_allowed"))
        await ends[1].drain()
        return None

    _, a = _run(busy, initiate(b"c"))
    assert isinstance(a, HandshakeError) and "not_allowed" in str(a)


def _name_message(flags: int, name: bytes = b"a@host") -> bytes:
    return b"N" + struct.pack(">QIH", flags, 1, len(name)) + name


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_name_message(FLAGS & ~handshake.DFLAG_BIG_CREATION), "mandatory"),
        (_name_message(FLAGS | handshake.DFLAG_NAME_ME), "dynamic name"),
        (_name_message(FLAGS, b"no-host"), "not a full node name"),
        (_name_message(FLAGS, b"\xff@host"), "UTF-8"),
        (b"N\x00\x01", "truncated"),
        (b"x", "expected a name"),
    ],
)
def test_acceptor_refuses_bad_names(message: bytes, reason: str) -> None:
    async def sender(ends: Streams) -> object:
        ends[1].write(_frame(message))
        await ends[1].drain()
        return await ends[0].read()

    b, _ = _run(accept(b"c"), sender)
    assert isinstance(b, HandshakeError) and reason in str(b)


def test_acceptor_takes_the_old_name_message_with_its_complement() -> None:
    # OTP 23/24 without EPMD: 'n' (version 5, 32-bit flags), then 'c' after the challenge.
    async def old_initiator(ends: Streams) -> object:
        reader, writer = ends
        low, high = FLAGS & 0xFFFFFFFF, FLAGS >> 32
        writer.write(_frame(b"n" + struct.pack(">HI", 5, low) + b"a@host"))
        assert await _read(reader) == b"sok"
        challenge_message = await _read(reader)
        (challenge,) = struct.unpack_from(">I", challenge_message, 9)
        writer.write(_frame(b"c" + struct.pack(">II", high, 9)))
        writer.write(_frame(b"r" + struct.pack(">I", 5) + handshake.digest(challenge, b"c")))
        ack = await _read(reader)
        return ack == b"a" + handshake.digest(5, b"c")

    b, a = _run(accept(b"c"), old_initiator)
    assert b == Peer("a@host", FLAGS, 9)
    assert a is True
