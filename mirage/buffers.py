"""Where image bytes live on the way in and out: views over borrowed input, and the
scratch files encoders write to.

The choices here serve speed and the GIL, not meaning, so they are kept out of the
imaging code:

- A borrowed buffer (a transport may lend memory it owns for the length of one call)
  is read in place through :class:`ViewFile` rather than copied whole.
- Large outputs are encoded into an anonymous in-memory file (memfd) where the OS
  provides one: Pillow then encodes the whole image in C with the GIL released, so
  encoders on several threads run in parallel. Small outputs go to ``BytesIO``,
  whose set-up is cheaper than the file's.
- Either way the result is an :class:`Encoded`, read out once, straight into where
  the caller wants it (a buffer, a file descriptor, or ``bytes``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from mirage.errors import EncodeFailed

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

T = TypeVar("T")

Data = bytes | memoryview

#: Outputs with more pixels than this (all frames) are encoded into a memfd.
MEMFD_ABOVE = 1 << 18


class ViewFile(io.RawIOBase):
    """A read-only file over a buffer, without copying it as ``BytesIO`` would."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view.cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        target = memoryview(buffer).cast("B")
        chunk = self._view[self._pos : self._pos + len(target)]
        count = len(chunk)
        target[:count] = chunk
        self._pos += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def reader(data: Data) -> io.BytesIO | io.BufferedReader:
    """A file reading ``data`` in place (``BytesIO`` shares bytes but copies a view)."""
    if isinstance(data, bytes):
        return io.BytesIO(data)
    return io.BufferedReader(ViewFile(data))


def scratch_file(pixels: int) -> io.BufferedRandom | io.BytesIO:
    """Somewhere to encode an output of ``pixels`` pixels (all frames) into."""
    if pixels > MEMFD_ABOVE and hasattr(os, "memfd_create"):
        fd = os.memfd_create("mirage-encode", os.MFD_CLOEXEC)
        return open(fd, "w+b")  # closed by the Encoded that wraps it
    return io.BytesIO()


class Encoded:
    """Encoded bytes held outside Python's heap until read out; close when done.

    Every read is positioned, so the bytes may be read more than once.
    """

    def __init__(self, file: io.BufferedRandom | io.BytesIO) -> None:
        self._file = file
        if isinstance(file, io.BytesIO):
            self.size = file.getbuffer().nbytes
        else:
            self.size = os.fstat(file.fileno()).st_size

    def __len__(self) -> int:
        return self.size

    def read_into(self, buffer: memoryview) -> None:
        """Copy the bytes into ``buffer`` (exactly ``len(self)`` bytes long)."""
        if isinstance(self._file, io.BytesIO):
            buffer[:] = self._file.getbuffer()
            return
        done = 0
        while done < self.size:
            count = os.preadv(self._file.fileno(), [buffer[done:]], done)
            if count <= 0:
                raise EncodeFailed("encoded output shrank while being read")
            done += count

    def write_to(self, fd: int) -> None:
        """Write the bytes to the file descriptor ``fd`` (a pipe, socket or file).

        A memfd is handed to the kernel (``sendfile``), so the bytes never pass
        through Python; a ``BytesIO`` is written from its buffer without a copy.
        """
        if isinstance(self._file, io.BytesIO):
            with self._file.getbuffer() as view:
                _write_all(fd, view)
            return
        done = 0
        while done < self.size:
            count = os.sendfile(fd, self._file.fileno(), done, self.size - done)
            if count <= 0:
                raise EncodeFailed("encoded output shrank while being written")
            done += count

    def to_bytes(self) -> bytes:
        buffer = bytearray(self.size)
        self.read_into(memoryview(buffer))
        return bytes(buffer)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Encoded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, view: memoryview) -> None:
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:])


#: What an operation does with its :class:`Encoded` output: it takes ownership.
Output = Callable[[Encoded], T]


def read_bytes(encoded: Encoded) -> bytes:
    """The :data:`Output` Python callers get by default: the bytes, file closed."""
    with encoded:
        return encoded.to_bytes()


def keep(encoded: Encoded) -> Encoded:
    """The :data:`Output` transports use: the :class:`Encoded` itself, still open,
    for the transport to read out where it needs it and then close."""
    return encoded
