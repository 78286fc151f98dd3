"""One connection's framing and control messages, driven over a socket pair."""

from __future__ import annotations

import asyncio
import socket
import struct

from mirage import etf
from mirage.etf import Atom, Pid, Reference
from mirage.node.connection import Connection
from mirage.node.handshake import FLAGS, Peer

THEM = Pid(Atom("erl@host"), 1, 0, 3)
US = Pid(Atom("py@host"), 5, 0, 4)
REF = Reference(Atom("erl@host"), 3, (1, 2, 3))
SERVED = frozenset((Atom("mirage"),))


def packet(
    control: tuple[object, ...], message: object = None, *, with_message: bool = False
) -> bytes:
    body = b"p" + etf.encode(control) + (etf.encode(message) if with_message else b"")
    return struct.pack(">I", len(body)) + body


async def exchange(
    packets: list[bytes], *, max_packet: int = 1 << 20, net_ticktime: float = 60
) -> tuple[list[bytes], list[tuple[Pid, Atom, bytes]], bool]:
    """Send ``packets`` to a Connection, then EOF; what it sent back and delivered."""
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    their_reader, their_writer = await asyncio.open_connection(sock=theirs)
    delivered: list[tuple[Pid, Atom, bytes]] = []
    conn = Connection(
        reader,
        writer,
        Peer("erl@host", FLAGS, 3),
        served=SERVED,
        deliver=lambda _c, sender, name, data, start: delivered.append(
            (sender, name, data[start:])
        ),
        net_ticktime=net_ticktime,
        max_packet=max_packet,
    )
    task = asyncio.create_task(conn.run())
    for data in packets:
        their_writer.write(data)
    await their_writer.drain()
    await asyncio.sleep(0.2)
    their_writer.write_eof()
    await asyncio.wait_for(task, 5)
    received = []
    raw = await their_reader.read()
    while raw:
        (size,) = struct.unpack_from(">I", raw)
        received.append(raw[4 : 4 + size])
        raw = raw[4 + size :]
    their_writer.close()
    return received, delivered, conn.closed


def decoded(body: bytes) -> object:
    assert body[:1] == b"p"
    control, size = etf.decode_prefix(body[1:])
    assert size == len(body) - 1
    return control


def test_ticks_are_answered() -> None:
    received, _, _ = asyncio.run(exchange([b"\0\0\0\0", b"\0\0\0\0"]))
    assert received == [b"", b""]


def test_reg_send_to_a_served_name_is_delivered() -> None:
    send = packet((6, THEM, Atom(""), Atom("mirage")), (1, 2), with_message=True)
    other = packet((6, THEM, Atom(""), Atom("rex")), (3,), with_message=True)
    _, delivered, _ = asyncio.run(exchange([send, other]))
    assert delivered == [(THEM, Atom("mirage"), etf.encode((1, 2)))]


def test_monitor_of_an_unknown_name_exits_noproc_at_once() -> None:
    monitors = [
        packet((19, THEM, Atom("mirage"), REF)),
        packet((19, THEM, Atom("nobody"), REF)),
        packet((20, THEM, Atom("mirage"), REF)),
    ]
    received, _, _ = asyncio.run(exchange(monitors))
    assert [decoded(r) for r in received] == [(21, Atom("nobody"), THEM, REF, Atom("noproc"))]


def test_links_are_refused_and_unlinks_acknowledged() -> None:
    received, _, _ = asyncio.run(exchange([packet((1, THEM, US)), packet((35, 7, THEM, US))]))
    assert [decoded(r) for r in received] == [(3, US, THEM, Atom("noproc")), (36, 7, US, THEM)]


def test_oversized_packet_closes_the_connection() -> None:
    received, delivered, closed = asyncio.run(
        exchange([struct.pack(">I", 1000) + b"p" * 1000], max_packet=999)
    )
    assert (received, delivered, closed) == ([], [], True)


def test_packet_other_than_pass_through_closes_the_connection() -> None:
    body = b"\x83" + etf.encode((6, THEM, Atom(""), Atom("mirage")))
    after = packet((6, THEM, Atom(""), Atom("mirage")), 1, with_message=True)
    _, delivered, closed = asyncio.run(exchange([struct.pack(">I", len(body)) + body, after]))
    assert delivered == [] and closed


def test_silent_peer_is_dropped_after_net_ticktime() -> None:
    async def silent() -> tuple[bool, list[bytes]]:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=ours)
        their_reader, their_writer = await asyncio.open_connection(sock=theirs)
        conn = Connection(
            reader,
            writer,
            Peer("erl@host", FLAGS, 3),
            served=SERVED,
            deliver=lambda *_: None,
            net_ticktime=0.4,
            max_packet=100,
        )
        await asyncio.wait_for(conn.run(), 5)
        raw = await their_reader.read()
        their_writer.close()
        return conn.closed, [raw[i : i + 4] for i in range(0, len(raw), 4)]

    closed, ticks = asyncio.run(silent())
    # It ticked while waiting (nothing else to send), then gave up on the peer.
    assert closed and ticks and set(ticks) == {b"\0\0\0\0"}


def test_control_message_larger_than_the_peek_is_read_whole() -> None:
    token = b"t" * 10_000  # REG_SEND_TT's trace token: any term
    send = packet((16, THEM, Atom(""), Atom("mirage"), token), (1, 2), with_message=True)
    _, delivered, _ = asyncio.run(exchange([send]))
    assert delivered == [(THEM, Atom("mirage"), etf.encode((1, 2)))]
