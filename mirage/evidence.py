"""What a file's own bytes say, to give a failure its precise reason.

Pillow's plugins fail alike for a file that is corrupt, one that ends early, one that
declares a zero size and a valid one using a variant of its format that Pillow does
not implement (the same ``SyntaxError`` or "Unsupported ..." message). The reason is
decided here from the evidence: the sizes and fields the header declares, read
independently of Pillow, and whether the reader really ran out of data.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Sequence
from typing import BinaryIO

from PIL import TiffImagePlugin

Data = bytes | memoryview

# Leading bytes that identify a format, in full: fewer bytes identify nothing.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "jpg": (b"\xff\xd8",),  # start of image
    "png": (b"\x89PNG\r\n\x1a\n",),
    "gif": (b"GIF87a", b"GIF89a"),
    "bmp": (b"BM",),
    "tiff": (b"II*\x00", b"MM\x00*"),
    "webp": (b"RIFF",),
}

# Bounded walks: a header that needs more than this is not evidence of anything.
_MAX_JPEG_MARKERS = 4096


def signature_only(data: Data, formats: Sequence[str]) -> bool:
    """True if ``data`` starts with the whole signature of one of ``formats`` (a cut-off
    image); a lone byte or a part of a signature identifies no format."""
    head = bytes(data[:8])
    return any(head.startswith(sig) for fmt in formats for sig in SIGNATURES.get(fmt, ()))


def ran_out(fp: BinaryIO | None, data: Data) -> bool:
    """Whether the reader consumed every byte: the only sign that data ended early."""
    if fp is None:
        return False
    try:
        return fp.tell() >= len(data)
    except (OSError, ValueError):
        return False


def declared_size(fmt: str, data: Data) -> tuple[int, int] | None:
    """The width and height the header declares, or ``None`` if it cannot be read."""
    reader = _SIZE_READERS.get(fmt)
    if reader is None:
        return None
    try:
        return reader(bytes(data[:65536]) if fmt != "jpg" else data)
    except (struct.error, IndexError, ValueError, KeyError, OSError, TypeError):
        return None


def declares_zero_size(fmt: str, data: Data) -> bool:
    size = declared_size(fmt, data)
    return size is not None and 0 in size


def _png_size(data: Data) -> tuple[int, int] | None:
    if bytes(data[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif_size(data: Data) -> tuple[int, int] | None:
    # Pillow's canvas: the logical screen, grown to hold the first image.
    screen_w, screen_h, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    while pos < len(data):
        kind = data[pos]
        if kind == 0x2C:
            left, top, w, h = struct.unpack("<HHHH", data[pos + 1 : pos + 9])
            return max(screen_w, left + w) if w else 0, max(screen_h, top + h) if h else 0
        if kind != 0x21:
            break
        pos += 2
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        pos += 1
    return screen_w, screen_h


def _bmp_size(data: Data) -> tuple[int, int] | None:
    header = struct.unpack("<I", data[14:18])[0]
    if header == 12:
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


# Start-of-frame markers: SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: Data) -> tuple[int, int] | None:
    pos = 2
    for _ in range(_MAX_JPEG_MARKERS):
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos + 3 > len(data):
            return None
        marker = data[pos]
        length = struct.unpack(">H", data[pos + 1 : pos + 3])[0]
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[pos + 4 : pos + 8])
            return width, height
        if marker in (0xD9, 0xDA):
            return None
        pos += 1 + length
        if pos >= len(data) or data[pos] != 0xFF:
            return None
    return None


def _tiff_tags(data: Data) -> TiffImagePlugin.ImageFileDirectory_v2:
    fp = io.BytesIO(bytes(data))
    ifd = TiffImagePlugin.ImageFileDirectory_v2(fp.read(8))
    fp.seek(ifd.next)
    ifd.load(fp)
    return ifd


def _tiff_size(data: Data) -> tuple[int, int] | None:
    tags = _tiff_tags(data)
    return int(tags[256]), int(tags[257])


def _webp_size(data: Data) -> tuple[int, int] | None:
    kind = bytes(data[12:16])
    if kind == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


_SIZE_READERS = {
    "png": _png_size,
    "gif": _gif_size,
    "bmp": _bmp_size,
    "jpg": _jpeg_size,
    "tiff": _tiff_size,
    "webp": _webp_size,
}


# --- valid variants Pillow does not decode ---------------------------------------------

# BMP fields as the format defines them (Microsoft's and OS/2's headers).
_BMP_HEADERS = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_BMP_DEPTHS = frozenset({0, 1, 2, 4, 8, 16, 24, 32, 64})
_BMP_COMPRESSIONS = frozenset({0, 1, 2, 3, 4, 5, 6, 11, 12, 13})

# TIFF fields: photometric interpretations, sample formats and compressions that the
# specification and its registered extensions define.
_TIFF_PHOTOMETRIC = frozenset({0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 32803, 32844, 32845, 34892})
_TIFF_BITS = frozenset({1, 2, 4, 8, 12, 16, 24, 32, 64})
_TIFF_SAMPLE_FORMATS = frozenset({1, 2, 3, 4})
_TIFF_COMPRESSIONS = frozenset(
    {1, 2, 3, 4, 5, 6, 7, 8, 32773, 32946, 34661, 34676, 34677, 34712, 34887, 34925}
    | {34926, 34927, 50000, 50001}
)

_JPEG_BITS = re.compile(r"cannot handle (\d+)-bit layers")


def unsupported_variant(fmt: str, data: Data, exc: BaseException) -> bool:
    """True if ``exc`` was raised on a file whose header is valid for its format but
    uses a variant Pillow does not implement (as opposed to a corrupt header)."""
    message = str(exc)
    try:
        if fmt == "bmp":
            return "Unsupported BMP" in message and "Palette" not in message and _bmp_valid(data)
        if fmt == "jpg":
            match = _JPEG_BITS.search(message)
            return match is not None and int(match.group(1)) in (12, 16)
        if fmt == "tiff":
            return _tiff_valid(_tiff_tags(data))
    except (struct.error, IndexError, ValueError, KeyError, OSError, TypeError):
        return False
    return False


def _bmp_valid(data: Data) -> bool:
    header = struct.unpack("<I", data[14:18])[0]
    if header not in _BMP_HEADERS:
        return False
    if header == 12:
        depth, compression = struct.unpack("<H", data[24:26])[0], 0
    else:
        depth = struct.unpack("<H", data[28:30])[0]
        compression = struct.unpack("<I", data[30:34])[0] if header >= 20 else 0
    return depth in _BMP_DEPTHS and compression in _BMP_COMPRESSIONS


def _tiff_valid(tags: TiffImagePlugin.ImageFileDirectory_v2) -> bool:
    bits = tags.get(258, (1,))
    formats = tags.get(339, (1,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    formats = formats if isinstance(formats, tuple) else (formats,)
    return (
        tags.get(262) in _TIFF_PHOTOMETRIC
        and tags.get(259, 1) in _TIFF_COMPRESSIONS
        and all(b in _TIFF_BITS for b in bits)
        and all(f in _TIFF_SAMPLE_FORMATS for f in formats)
        and int(tags.get(277, 1)) >= 1
    )


def tiff_codec_missing(im: object) -> bool:
    """A TIFF whose (valid) compression this build's libtiff was built without."""
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return False
    compression = tags.get(259, 1)
    return compression in _TIFF_COMPRESSIONS and compression not in _LIBTIFF_BUILTIN


# Compressions every libtiff build decodes (others are optional: WebP, ZSTD, LZMA...).
_LIBTIFF_BUILTIN = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 32773, 32946})
