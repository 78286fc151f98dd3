"""``{:packet, 4}`` framing over pipes: a 4-byte big-endian length, then the frame.

Large payloads cross once: a frame is read straight into the one ``bytes`` object
that the decoder then slices (``io.BufferedReader.read(n)`` fills its result from the
pipe directly when ``n`` exceeds its buffer), and a frame is written from its parts
(``os.writev``), or from an encoder's own file (``write_to``), without joining them.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Sequence
from typing import Final, Protocol

HEADER: Final = struct.Struct(">I")
#: {:packet, 4} cannot express more.
MAX_FRAME: Final = 2**32 - 1
# Frames up to this size are sent in one writev even when a part must be copied.
_SMALL: Final = 64 * 1024
# Linux's IOV_MAX.
_IOV_MAX: Final = 1024


class FramingError(Exception):
    """The input ended in the middle of a frame, or a frame is too large to send."""


class Streamed(Protocol):
    """Bytes kept outside Python's heap (mirage's ``Encoded``) that write themselves."""

    def __len__(self) -> int: ...

    def write_to(self, fd: int) -> None: ...

    def to_bytes(self) -> bytes: ...


Part = bytes | bytearray | memoryview | Streamed


class FrameReader:
    """Reads frames from a file descriptor it owns."""

    def __init__(self, fd: int) -> None:
        self._file = open(fd, "rb", buffering=_SMALL, closefd=False)

    def read(self) -> bytes | None:
        """The next frame, or None at end of input between frames."""
        header = self._file.read(HEADER.size)
        if not header:
            return None
        if len(header) < HEADER.size:
            raise FramingError("input ended inside a frame header")
        (size,) = HEADER.unpack(header)
        frame = self._file.read(size)
        if len(frame) < size:
            raise FramingError(f"input ended {size - len(frame)} bytes short of a frame")
        return frame


class FrameWriter:
    """Writes whole frames to a file descriptor; safe to share between threads."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def write(self, parts: Sequence[Part]) -> None:
        """One frame made of ``parts`` in order; the frame is never interleaved."""
        size = sum(len(part) for part in parts)
        if size > MAX_FRAME:
            raise FramingError(f"a {size}-byte frame does not fit {{:packet, 4}}")
        if size <= _SMALL:
            # One write: copying a small streamed part costs less than a syscall.
            parts = [
                p if isinstance(p, (bytes, bytearray, memoryview)) else p.to_bytes() for p in parts
            ]
        buffers: list[bytes | bytearray | memoryview] = [HEADER.pack(size)]
        with self._lock:
            for part in parts:
                if isinstance(part, (bytes, bytearray, memoryview)):
                    buffers.append(part)
                else:
                    self._write_all(buffers)
                    buffers = []
                    part.write_to(self._fd)
            self._write_all(buffers)

    def _write_all(self, buffers: list[bytes | bytearray | memoryview]) -> None:
        views = [memoryview(b).cast("B") for b in buffers if len(b)]
        while views:
            done = os.writev(self._fd, views[:_IOV_MAX])
            # Drop what was written: whole buffers first, then the front of the next.
            while views and done >= len(views[0]):
                done -= len(views[0])
                views.pop(0)
            if done:
                views[0] = views[0][done:]
