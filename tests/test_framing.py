"""mirage.framing: {packet, 4} frames over pipes, and the copies they do not make."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from mirage import etf
from mirage.framing import HEADER, FrameReader, FrameWriter, FramingError

MIB = 1024 * 1024


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        try:
            os.close(fd)
        except OSError:
            pass


def drain(fd: int) -> tuple[threading.Thread, bytearray]:
    """A thread reading ``fd`` to its end into the returned buffer."""
    received = bytearray()

    def run() -> None:
        while chunk := os.read(fd, 1 << 16):
            received.extend(chunk)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, received


def peak(action: Callable[[], object]) -> int:
    """Bytes allocated by ``action`` at its peak, beyond what it started with."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        action()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


class Streamed:
    """Stands in for mirage's Encoded: bytes that write themselves to a descriptor."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.streamed = 0

    def __len__(self) -> int:
        return len(self.data)

    def write_to(self, fd: int) -> None:
        self.streamed += 1
        view = memoryview(self.data)
        while view:
            view = view[os.write(fd, view) :]

    def to_bytes(self) -> bytes:
        return self.data


def test_frames_round_trip_in_order(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    writer = FrameWriter(write_end)
    large = os.urandom(3 * MIB)  # far over a pipe's buffer: many partial writes
    frames = [b"", b"one", large, b"x" * 70_000]
    thread, received = drain(read_end)
    writer.write([b""])
    writer.write([b"o", bytearray(b"n"), memoryview(b"e")])
    writer.write([large[:100], memoryview(large)[100:]])
    writer.write([b"x" * 70_000])
    os.close(write_end)
    thread.join()
    expected = b"".join(HEADER.pack(len(f)) + f for f in frames)
    assert bytes(received) == expected


def test_streamed_parts_write_themselves_when_large(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    writer = FrameWriter(write_end)
    small, large = Streamed(b"tiny"), Streamed(os.urandom(MIB))
    thread, received = drain(read_end)
    writer.write([b"<", small, b">"])
    writer.write([b"<", large, b">"])
    os.close(write_end)
    thread.join()
    assert (small.streamed, large.streamed) == (0, 1)  # small frames: one write
    expected = HEADER.pack(6) + b"<tiny>" + HEADER.pack(MIB + 2) + b"<" + large.data + b">"
    assert bytes(received) == expected


def test_frames_from_threads_never_interleave(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    writer = FrameWriter(write_end)
    thread, received = drain(read_end)
    payloads = [bytes([i]) * (100_000 + i) for i in range(8)]
    writers = [threading.Thread(target=writer.write, args=([p],)) for p in payloads]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    os.close(write_end)
    thread.join()
    seen, pos = [], 0
    while pos < len(received):
        (size,) = HEADER.unpack_from(received, pos)
        frame = bytes(received[pos + 4 : pos + 4 + size])
        assert frame == bytes([frame[0]]) * size
        seen.append(frame)
        pos += 4 + size
    assert sorted(seen) == sorted(payloads)


def test_reader_reads_frames_then_none_at_the_end(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    large = os.urandom(2 * MIB)
    done = threading.Thread(
        target=lambda: (FrameWriter(write_end).write([large]), os.close(write_end))
    )
    done.start()
    reader = FrameReader(read_end)
    assert reader.read() == large
    assert reader.read() is None
    done.join()


@pytest.mark.parametrize("tail", [b"\x00\x00", HEADER.pack(10) + b"short"])
def test_reader_refuses_input_that_ends_inside_a_frame(pipe: tuple[int, int], tail: bytes) -> None:
    read_end, write_end = pipe
    os.write(write_end, HEADER.pack(2) + b"ok" + tail)
    os.close(write_end)
    reader = FrameReader(read_end)
    assert reader.read() == b"ok"
    with pytest.raises(FramingError):
        reader.read()


def test_a_large_request_is_read_and_decoded_with_one_copy(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    source = os.urandom(8 * MIB)
    frame = etf.encode((1, etf.Atom("info"), source, {}, None))
    thread = threading.Thread(
        target=lambda: (FrameWriter(write_end).write([frame]), os.close(write_end))
    )
    thread.start()
    reader = FrameReader(read_end)
    result: list[object] = []
    # The frame's bytes object, filled from the pipe; the binary is a view into it.
    allocated = peak(lambda: result.append(etf.decode(reader.read() or b"", views=True)))
    thread.join()
    assert allocated < len(frame) + MIB
    request = result[0]
    assert isinstance(request, tuple) and isinstance(request[2], memoryview)
    assert request[2] == source


def test_a_large_reply_is_written_without_a_copy(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    data = os.urandom(8 * MIB)
    reply = (1, (etf.Atom("ok"), data, None, None))
    digest = hashlib.sha256()

    def run() -> None:  # hashes as it reads: keeping the bytes would count as allocated
        while chunk := os.read(read_end, 1 << 16):
            digest.update(chunk)

    thread = threading.Thread(target=run)
    thread.start()
    writer = FrameWriter(write_end)
    allocated = peak(lambda: writer.write(etf.encode_parts(reply)))
    os.close(write_end)
    thread.join()
    assert allocated < MIB
    encoded = etf.encode(reply)
    assert digest.digest() == hashlib.sha256(HEADER.pack(len(encoded)) + encoded).digest()
