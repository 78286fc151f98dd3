"""A faster decode and encode of plain PNGs for :func:`mirage.image.thumbnail` (issue 12).

Pillow's PNG decode is zlib's inflate followed by unfiltering, both in C but neither
fast: zlib inflates at a fraction of ISA-L's speed, and Pillow's Paeth predictor
branches on every byte. This path inflates the IDAT stream with ``isal`` and
unfilters with c_src/png/unfilter.c (built as ``mirage/_png_unfilter.so``), for the
common case only: 8-bit grey, grey+alpha, RGB or RGBA, not interlaced, no ``tRNS``
and no animation. The pixels are the same bytes Pillow's decoder produces.

Thumbnails are written the same way round: rows Paeth-filtered in C, deflated with
``isal``, and no chunk but IHDR, IDAT and IEND (only when the call strips metadata
and the image has no colour profile to carry).

Anything else, or anything irregular (a chunk out of bounds, a stream that is
corrupt, short, long or unfinished, an unknown filter type), returns ``None`` and
the caller decodes with Pillow as before, so every error and its reason stays
Pillow's. Without ``isal`` or the library, every call returns ``None``.
"""

from __future__ import annotations

import struct
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from mirage import buffers, fastpath
from mirage.buffers import Encoded

_isal: Any
try:
    from isal import isal_zlib as _isal
except ImportError:  # optional: Pillow decodes instead
    _isal = None

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> (Pillow mode, bytes per pixel) at bit depth 8
_MODES = {0: ("L", 1), 2: ("RGB", 3), 4: ("LA", 2), 6: ("RGBA", 4)}
_COLOUR_TYPES = {mode: (colour, bpp) for colour, (mode, bpp) in _MODES.items()}
# ISA-L's fastest level: with Paeth-filtered rows its output is about the size of
# zlib's level 2 over Pillow's per-row filter choice, in a fraction of the time.
_ISAL_LEVEL = 1
# Inflated bytes per band handed to the unfilter, and compressed bytes fed per step.
_BAND = 1 << 18
_INPUT = 1 << 16
# Chunks that change what the pixels mean: Pillow handles these files.
_DECLINE = frozenset({b"tRNS", b"acTL", b"fcTL", b"fdAT"})
_LIBRARY = Path(__file__).resolve().parent / "_png_unfilter.so"

_lib: Any = None
_loaded = False
_load_lock = threading.Lock()


def _unfilter_lib() -> Any:
    global _lib, _loaded
    if not _loaded:
        # Loading takes milliseconds and lets other threads run (cffi parses the
        # declarations in Python). A call arriving meanwhile must wait for the result:
        # told "no library", it would write its PNG with Pillow, other bytes than the
        # same call gives once loaded. So _loaded is set last, under the lock.
        with _load_lock:
            if not _loaded:
                _lib = _load()
                _loaded = True
    return _lib


def _load() -> Any:
    if _isal is None or not _LIBRARY.exists():
        return None
    import cffi  # type: ignore[import-untyped]

    ffi = cffi.FFI()
    ffi.cdef(
        "int mirage_png_unfilter(const uint8_t *src, uint8_t *dst, size_t rows,"
        " size_t rowbytes, size_t bpp, int above);"
        "void mirage_png_filter_paeth(const uint8_t *src, uint8_t *dst, size_t rows,"
        " size_t rowbytes, size_t bpp);"
    )
    try:
        return (ffi, ffi.dlopen(str(_LIBRARY)))
    except OSError:
        return None


def available() -> bool:
    """Whether this path can run (``isal`` installed, the library built)."""
    return _unfilter_lib() is not None


def decode(data: bytes | memoryview, size: tuple[int, int]) -> PILImage.Image | None:
    """The pixels of the PNG ``data`` (of ``size``, from its header), or ``None`` to
    let Pillow decode it."""
    lib = _unfilter_lib()
    if lib is None:
        return None
    parsed = _idat(memoryview(data))
    if parsed is None:
        return None
    header, stream = parsed
    width, height, depth, colour, compression, filtering, interlace = header
    if (width, height) != size or depth != 8 or colour not in _MODES:
        return None
    if compression or filtering or interlace:
        return None
    mode, bpp = _MODES[colour]
    rowbytes = width * bpp
    pixels = _inflate_unfilter(stream, height, rowbytes, bpp, lib)
    if pixels is None:
        return None
    return PILImage.frombytes(mode, size, pixels)


def _inflate_unfilter(
    stream: bytes, height: int, rowbytes: int, bpp: int, lib: Any
) -> bytearray | None:
    """The unfiltered pixels of the zlib ``stream``, or ``None`` if it is not exactly
    ``height`` rows, ends early, or has a row of an unknown filter type.

    Inflating and unfiltering overlap, band by band: isal holds the GIL while it
    inflates, the C unfilter (through cffi) releases it, so the rows inflated so far
    are unfiltered on another thread while the next band inflates. The output of each
    step is bounded, so a stream that inflates past the image is not read further.
    """
    ffi, unfilter = lib
    stride = rowbytes + 1
    expected = height * stride
    pixels = bytearray(height * rowbytes)
    target = ffi.from_buffer("uint8_t[]", pixels)
    threaded = expected > 2 * _BAND
    inflater = _isal.decompressobj()
    view = memoryview(stream)
    pending = bytearray()
    fed = total = done = 0
    job: Future[int] | None = None

    def unfilter_band(band: bytes, first: int, rows: int) -> int:
        source = ffi.from_buffer("uint8_t[]", band)
        return int(
            unfilter.mirage_png_unfilter(
                source, target + first * rowbytes, rows, rowbytes, bpp, first > 0
            )
        )

    def finished(job: Future[int] | None) -> bool:
        return job is None or job.result() == 0

    try:
        while not inflater.eof:
            if inflater.unconsumed_tail:
                chunk = inflater.unconsumed_tail
            else:
                chunk = view[fed : fed + _INPUT].tobytes()
                fed += len(chunk)
            try:
                out = inflater.decompress(chunk, min(_BAND, expected + 1 - total))
            except _isal.error:
                return None
            if not out and not chunk:
                return None  # the stream ends before its end
            total += len(out)
            if total > expected:
                return None
            pending += out
            rows = len(pending) // stride
            if rows and (len(pending) >= _BAND or total == expected):
                band = bytes(pending[: rows * stride])
                del pending[: rows * stride]
                if not finished(job):
                    return None
                if threaded:
                    job = fastpath.executor().submit(unfilter_band, band, done, rows)
                elif unfilter_band(band, done, rows):
                    return None
                done += rows
        if not finished(job) or total != expected or pending:
            return None
        job = None
    finally:
        if job is not None:
            job.result()  # never leave a band writing into pixels after returning
    return pixels


def encode(im: PILImage.Image) -> Encoded | None:
    """``im`` as a PNG with no ancillary chunks (pixels only), or ``None`` to let
    Pillow write it (another mode, or no fast path here)."""
    lib = _unfilter_lib()
    if lib is None or im.mode not in _COLOUR_TYPES:
        return None
    colour, bpp = _COLOUR_TYPES[im.mode]
    width, height = im.size
    rowbytes = width * bpp
    pixels = im.tobytes()
    filtered = bytearray(height * (rowbytes + 1))
    ffi, unfilter = lib
    unfilter.mirage_png_filter_paeth(
        ffi.from_buffer("uint8_t[]", pixels),
        ffi.from_buffer("uint8_t[]", filtered),
        height,
        rowbytes,
        bpp,
    )
    del pixels
    stream = _isal.compress(filtered, _ISAL_LEVEL)
    file = buffers.scratch_file(width * height)
    file.write(_SIGNATURE)
    file.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)))
    file.write(_chunk(b"IDAT", stream))
    file.write(_chunk(b"IEND", b""))
    file.flush()
    return Encoded(file)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = _isal.crc32(body, _isal.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _idat(
    data: memoryview,
) -> tuple[tuple[int, int, int, int, int, int, int], bytes] | None:
    """IHDR's fields and the IDAT chunks joined, if the chunks are well formed up to
    IEND and the IDAT chunks are consecutive."""
    if data[:8] != _SIGNATURE:
        return None
    pos, end = 8, len(data)
    header = None
    parts: list[memoryview] = []
    idat_done = False
    while True:
        if pos + 12 > end:
            return None
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if length > end - body - 4:
            return None
        if header is None:
            if kind != b"IHDR" or length != 13:
                return None
            header = struct.unpack_from(">IIBBBBB", data, body)
        elif kind == b"IDAT":
            if idat_done:
                return None
            parts.append(data[body : body + length])
        elif kind == b"IEND":
            break
        elif kind in _DECLINE:
            return None
        elif parts:
            idat_done = True
        pos = body + length + 4
    if not parts:
        return None
    return header, b"".join(parts)
