"""A faster JPEG decode at 1/8 scale for :func:`mirage.image.thumbnail` (issue 12).

When a thumbnail is small enough that libjpeg would decode at 1/8 scale, each 8x8
block becomes one pixel, its DC coefficient. c_src/jpeg/dcscale.c (built as
``mirage/_jpeg_dc.so``) decodes only those: the AC coefficients are skipped, not
stored and transformed, and the entropy-coded data is shared between threads (see
the C file for how, with and without restart markers). The pixels are libjpeg's
1/8-scale result: exactly for grey, 4:4:4 and 4:2:2 (chroma repeated, as libjpeg
does at this scale), and within rounding for 4:2:0, whose chroma blocks give 2x2
pixels each, the means of their quarters, as libjpeg's reduced inverse DCT does
(tests/test_jpegdc.py).

Only plain files take this path: 8-bit Huffman baseline or extended, one scan of
grey or YCbCr. Anything else or anything irregular returns ``None`` and Pillow
decodes as before, so every error and its reason stays Pillow's. Without the
library (no C compiler at set-up), every call returns ``None``.
"""

from __future__ import annotations

from typing import Any

from PIL import Image as PILImage

from mirage import fastpath, native

# The scale this path decodes at, and Pillow's draft would choose (1/8).
SCALE = 8
# Entropy-coded bytes per thread below which another thread costs more than it saves.
_BYTES_PER_THREAD = 1 << 18
_MAX_THREADS = 4
_MODES = {1: "L", 3: "RGB"}

_LIBRARY = native.Library(
    "_jpeg_dc.so",
    "int mirage_jdc_probe(const uint8_t *data, size_t len, int *width, int *height,"
    " int *channels);"
    "int mirage_jdc_decode(const uint8_t *data, size_t len, int threads, uint8_t *out,"
    " size_t out_len);",
)


def _library() -> Any:
    return _LIBRARY.get()


def available() -> bool:
    """Whether this path can run (the library is built)."""
    return _library() is not None


def applies(stored: tuple[int, int], request: tuple[int, int]) -> bool:
    """Whether Pillow's draft would decode at 1/8 scale for ``request``."""
    return min(stored[0] // request[0], stored[1] // request[1]) >= SCALE


def _threads(size: int) -> int:
    return max(1, min(fastpath.cores(), _MAX_THREADS, size // _BYTES_PER_THREAD))


def decode(
    data: bytes | memoryview, mode: str, stored: tuple[int, int], threads: int | None = None
) -> PILImage.Image | None:
    """The JPEG ``data`` (``mode`` and ``stored`` size from Pillow's header read)
    decoded at 1/8 scale, or ``None`` to let Pillow decode it. ``threads`` (at most
    8) overrides the choice by size and cores; the pixels never depend on it."""
    lib = _library()
    if lib is None:
        return None
    ffi, jdc = lib
    source = ffi.from_buffer("uint8_t[]", data)
    width, height, channels = ffi.new("int *"), ffi.new("int *"), ffi.new("int *")
    if jdc.mirage_jdc_probe(source, len(source), width, height, channels):
        return None
    size = (width[0], height[0])
    expected = ((stored[0] + SCALE - 1) // SCALE, (stored[1] + SCALE - 1) // SCALE)
    if _MODES.get(channels[0]) != mode or size != expected:
        return None
    pixels = bytearray(size[0] * size[1] * channels[0])
    target = ffi.from_buffer("uint8_t[]", pixels)
    if threads is None:
        threads = fastpath.threads_allowed(_threads(len(source)))
    if jdc.mirage_jdc_decode(source, len(source), threads, target, len(pixels)):
        return None
    return PILImage.frombuffer(mode, size, pixels, "raw", mode, 0, 1)
