"""Small crafted files: builders for the cost and reasons tests, and the table of the
project's own corpus (``test/fixtures/crafted``, written by ``tools/crafted.py``).

Every builder is deterministic: the same bytes on every run with the same Pillow
(the few that start from a file Pillow encodes) or on any machine (the rest, packed
by hand).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage

CRAFTED = Path(__file__).resolve().parents[1] / "test" / "fixtures" / "crafted"


def _encoded(im: PILImage.Image, pillow_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=pillow_format, **options)
    return buffer.getvalue()


def _gradient(size: tuple[int, int]) -> PILImage.Image:
    width, height = size
    im = PILImage.new("RGB", size)
    im.putdata(
        [(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)]
    )
    return im


# --- zero sizes ---------------------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    """An 8-bit RGB PNG of ``width`` x ``height`` black pixels (checksums right)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = (b"\0" + b"\0" * 3 * width) * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR says ``width`` x ``height`` (its checksum right)."""
    data = bytearray(png(1, 1))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(data[12:29]))
    return bytes(data)


def gif(width: int, height: int) -> bytes:
    """A 4x4 GIF whose logical screen and image descriptor say ``width`` x ``height``."""
    data = bytearray(_encoded(PILImage.new("P", (4, 4)), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    at = data.index(b"\x2c\x00\x00\x00\x00")
    struct.pack_into("<HH", data, at + 5, width, height)
    return bytes(data)


def bmp(width: int, height: int) -> bytes:
    """A 24-bit BMP header of ``width`` x ``height`` over 4x4 pixels of data."""
    data = bytearray(_encoded(PILImage.new("RGB", (4, 4), (9, 99, 199)), "BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def jpeg(width: int, height: int) -> bytes:
    """An 8x8 baseline JPEG whose SOF says ``width`` x ``height``."""
    data = bytearray(_encoded(_gradient((8, 8)), "JPEG", quality=50))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def webp(width: int, height: int) -> bytes:
    """A 16x16 lossy WebP whose VP8 frame header says ``width`` x ``height``."""
    data = bytearray(_encoded(_gradient((16, 16)), "WEBP", quality=50))
    assert data[12:16] == b"VP8 "
    struct.pack_into("<HH", data, 26, width, height)
    return bytes(data)


def bmp_rle(width: int, height: int, *, bits: int = 8) -> bytes:
    """An RLE8 (``bits=8``) or RLE4 BMP whose every row is one pixel and an end of line
    (Pillow then pads the row a pixel at a time, in Python)."""
    colours = 1 << bits
    palette = b"".join(bytes((i * 255 // (colours - 1), 64, 128, 0)) for i in range(colours))
    pixels = b"\x01\x01\x00\x00" * height + b"\x00\x01"  # one pixel, end of line; end
    compression = 1 if bits == 8 else 2
    header = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, bits, compression, len(pixels), 2835, 2835, colours, 0
    )
    offset = 14 + len(header) + len(palette)
    return (
        b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + palette + pixels
    )


# --- TIFF layouts -----------------------------------------------------------------------

_SHORT, _LONG, _RATIONAL = 3, 4, 5


def tiff(
    width: int,
    height: int,
    *,
    rows_per_strip: int | None = None,
    tile: tuple[int, int] | None = None,
    pieces: int | None = None,
    extra_entries: int = 0,
    big: bool = False,
    rationals: tuple[int, int] | None = None,
    in_exif: bool = False,
) -> bytes:
    """An uncompressed 8-bit greyscale TIFF of black pixels, little-endian.

    Its strips (``rows_per_strip``, default one strip) or tiles (``tile``) are as many
    as the size needs unless ``pieces`` says otherwise: surplus ones point at the same
    data. ``extra_entries`` adds private tags (SHORT, one value each) to the
    directory; ``big`` writes a BigTIFF. ``rationals`` is a tag and a count of
    RATIONAL values (each 1/1) for it, in the directory or, if ``in_exif``, in an
    EXIF sub-directory (not with ``big``).
    """
    if tile is not None:
        across, down = -(-width // tile[0]), -(-height // tile[1])
        piece_bytes = tile[0] * tile[1]
    else:
        rows = rows_per_strip or height
        across, down = 1, -(-height // max(rows, 1))
        piece_bytes = width * rows
    count = pieces if pieces is not None else across * down
    needed = across * down
    entries: list[tuple[int, int, list[int]]] = [
        (256, _LONG, [width]),
        (257, _LONG, [height]),
        (258, _SHORT, [8]),
        (259, _SHORT, [1]),
        (262, _SHORT, [1]),
        (277, _SHORT, [1]),
    ]
    offsets_tag, counts_tag = (324, 325) if tile is not None else (273, 279)
    if tile is not None:
        entries += [(322, _LONG, [tile[0]]), (323, _LONG, [tile[1]])]
    elif rows_per_strip is not None:
        entries.append((278, _LONG, [rows_per_strip]))
    entries.append((offsets_tag, _LONG, [0] * count))  # filled in below
    entries.append((counts_tag, _LONG, [piece_bytes] * count))
    # Tags 10000 and up: no specification defines any of them.
    entries += [(10000 + i, _SHORT, [i % 65536]) for i in range(extra_entries)]
    if rationals is not None:
        entries.append((0x8769, _LONG, [0]) if in_exif else (rationals[0], _RATIONAL, []))
    entries.sort(key=lambda entry: entry[0])

    head, count_format, entry_size, inline = (16, "<Q", 20, 8) if big else (8, "<H", 12, 4)
    ifd_size = struct.calcsize(count_format) + entry_size * len(entries) + inline
    arrays = bytearray()
    array_at: dict[int, int] = {}
    for tag, kind, values in entries:
        size = len(values) * (2 if kind == _SHORT else 4)
        if kind != _RATIONAL and size > inline:
            array_at[tag] = head + ifd_size + len(arrays)
            arrays += bytes(size)
    pixels_at = head + ifd_size + len(arrays)
    offsets = [pixels_at + (i % needed) * piece_bytes for i in range(count)]
    after = pixels_at + needed * piece_bytes  # an EXIF directory, then the rationals
    tail = b""
    if rationals is not None:
        tag, number_of = rationals
        blob_at = after + (18 if in_exif else 0)
        if in_exif:
            tail = struct.pack("<HHHII", 1, tag, _RATIONAL, number_of, blob_at) + bytes(4)
        tail += struct.pack("<II", 1, 1) * number_of

    out = bytearray(
        b"II+\x00" + struct.pack("<HHQ", 8, 0, head)
        if big
        else b"II*\x00" + struct.pack("<I", head)
    )
    out += struct.pack(count_format, len(entries))
    for tag, kind, values in entries:
        if kind == _RATIONAL:
            out += struct.pack("<HHII", tag, kind, rationals[1], after)  # type: ignore[index]
            continue
        if tag == 0x8769:
            values = [after]
        values = offsets if tag == offsets_tag else values
        packed = struct.pack("<" + ("H" if kind == _SHORT else "I") * len(values), *values)
        if tag in array_at:
            at = array_at[tag] - head - ifd_size
            arrays[at : at + len(packed)] = packed
            field = array_at[tag].to_bytes(inline, "little")
        else:
            field = packed.ljust(inline, b"\0")
        number = len(values).to_bytes(8 if big else 4, "little")
        out += struct.pack("<HH", tag, kind) + number + field
    out += bytes(inline)  # no next directory
    return bytes(out + arrays + bytes(needed * piece_bytes) + tail)


def exif(*, orientation: int, rationals: int, tag: int = 0x829A) -> bytes:
    """Little-endian TIFF-structured EXIF: the orientation, and ``tag`` holding
    ``rationals`` rationals (each 1/1)."""
    values_at = 8 + 2 + 2 * 12 + 4
    directory = struct.pack("<H", 2) + struct.pack("<HHII", 0x0112, _SHORT, 1, orientation)
    directory += struct.pack("<HHII", tag, _RATIONAL, rationals, values_at) + bytes(4)
    return b"II*\x00" + struct.pack("<I", 8) + directory + struct.pack("<II", 1, 1) * rationals


def png_with_exif(blob: bytes) -> bytes:
    """A 4x4 PNG with ``blob`` as its eXIf chunk, before the image data."""
    data = png(4, 4)
    crc = zlib.crc32(b"eXIf" + blob)
    chunk = struct.pack(">I", len(blob)) + b"eXIf" + blob + struct.pack(">I", crc)
    return data[:33] + chunk + data[33:]


# --- structure floods ---------------------------------------------------------------------


def progressive_jpeg(scans: int) -> bytes:
    """A 16x16 progressive JPEG whose last scan is repeated until it has ``scans``."""
    data = _encoded(_gradient((16, 16)), "JPEG", progressive=True, quality=90)
    own = data.count(b"\xff\xda")
    last = data.rfind(b"\xff\xda")
    return data[:-2] + data[last:-2] * (scans - own) + data[-2:]


def jpeg_marker_flood(markers: int) -> bytes:
    """An 8x8 JPEG with ``markers`` empty APP5 segments before its image."""
    data = _encoded(_gradient((8, 8)), "JPEG", quality=50)
    return data[:2] + b"\xff\xe5\x00\x02" * markers + data[2:]


def gif_comment_flood(blocks: int, size: int = 1) -> bytes:
    """A 4x4 GIF with one comment made of ``blocks`` sub-blocks of ``size`` bytes."""
    data = _encoded(PILImage.new("P", (4, 4)), "GIF")
    at = data.index(b"\x2c\x00\x00\x00\x00")
    comment = (bytes([size]) + b"c" * size) * blocks
    return data[:at] + b"\x21\xfe" + comment + b"\x00" + data[at:]


# --- the crafted corpus -------------------------------------------------------------------


@dataclass(frozen=True)
class Crafted:
    reason: str
    how: str
    build: Callable[[], bytes]


#: test/fixtures/crafted: file name -> the reason it must give, and how it is made.
CORPUS: dict[str, Crafted] = {
    "png_0x4.png": Crafted(
        "invalid_dimensions", "PNG, IHDR width 0 (checksums right)", lambda: png(0, 4)
    ),
    "png_4x0.png": Crafted(
        "invalid_dimensions", "PNG, IHDR height 0 (checksums right)", lambda: png(4, 0)
    ),
    "gif_0x4.gif": Crafted(
        "invalid_dimensions", "4x4 GIF, screen and image width set to 0", lambda: gif(0, 4)
    ),
    "gif_4x0.gif": Crafted(
        "invalid_dimensions", "4x4 GIF, screen and image height set to 0", lambda: gif(4, 0)
    ),
    "bmp_0x4.bmp": Crafted(
        "invalid_dimensions", "4x4 24-bit BMP, header width set to 0", lambda: bmp(0, 4)
    ),
    "bmp_4x0.bmp": Crafted(
        "invalid_dimensions", "4x4 24-bit BMP, header height set to 0", lambda: bmp(4, 0)
    ),
    "tiff_0x4.tif": Crafted(
        "invalid_dimensions", "uncompressed TIFF, ImageWidth 0", lambda: tiff(0, 4)
    ),
    "tiff_4x0.tif": Crafted(
        "invalid_dimensions", "uncompressed TIFF, ImageLength 0", lambda: tiff(4, 0)
    ),
    "webp_0x16.webp": Crafted(
        "invalid_dimensions", "16x16 lossy WebP, VP8 width set to 0", lambda: webp(0, 16)
    ),
    "jpeg_0x8.jpg": Crafted(
        "invalid_dimensions", "8x8 JPEG, SOF width set to 0", lambda: jpeg(0, 8)
    ),
    "jpeg_150_scans.jpg": Crafted(
        "too_complex",
        "16x16 progressive JPEG, last scan repeated to 150 scans (max_scans 100)",
        lambda: progressive_jpeg(150),
    ),
    "jpeg_app_flood.jpg": Crafted(
        "too_complex",
        "8x8 JPEG after 1100 empty APP5 segments (limit 1024)",
        lambda: jpeg_marker_flood(1100),
    ),
    "tiff_surplus_strips.tif": Crafted(
        "too_complex",
        "64x64 TIFF of 2 strips of 32 rows listing 200 strip offsets",
        lambda: tiff(64, 64, rows_per_strip=32, pieces=200),
    ),
    "tiff_surplus_tiles.tif": Crafted(
        "too_complex",
        "32x32 TIFF of 4 16x16 tiles listing 100 tile offsets",
        lambda: tiff(32, 32, tile=(16, 16), pieces=100),
    ),
    "tiff_entry_flood.tif": Crafted(
        "too_complex",
        "8x8 TIFF whose directory has 4100 private tags (limit 4096)",
        lambda: tiff(8, 8, extra_entries=4100 - 8),
    ),
    "bmp_rle8_3000x3000.bmp": Crafted(
        "too_complex",
        "RLE8 BMP of 3000x3000, each row one pixel and an end of line (9 MP charged 8 each)",
        lambda: bmp_rle(3000, 3000),
    ),
    "bmp_rle4_3000x3000.bmp": Crafted(
        "too_complex",
        "RLE4 BMP of 3000x3000, each row one pixel and an end of line (9 MP charged 8 each)",
        lambda: bmp_rle(3000, 3000, bits=4),
    ),
    "tiff_exif_rationals.tif": Crafted(
        "too_complex",
        "8x8 TIFF whose EXIF directory holds ExposureTime as 8200 rationals (limit 8192)",
        lambda: tiff(8, 8, rationals=(0x829A, 8200), in_exif=True),
    ),
    "png_20000x20000.png": Crafted(
        "too_many_pixels",
        "PNG header of 20000x20000 (400 MP), no pixel data",
        lambda: png_claiming(20000, 20000),
    ),
    "tiff_10000x10000.tif": Crafted(
        "too_many_pixels",
        "TIFF directory of 10000x10000 in one strip, 64 bytes of data",
        lambda: tiff_claiming(10000, 10000),
    ),
}


def tiff_claiming(width: int, height: int) -> bytes:
    """An 8x8 TIFF whose ImageWidth and ImageLength say ``width`` x ``height``."""
    data = bytearray(tiff(8, 8))
    for tag, value in ((256, width), (257, height)):
        at = data.index(struct.pack("<HHI", tag, _LONG, 1))
        struct.pack_into("<I", data, at + 8, value)
    return bytes(data)


def manifest() -> str:
    """MANIFEST.tsv of the crafted corpus: file, expected reason, how it was made."""
    rows = (f"{name}\t{item.reason}\t{item.how}\n" for name, item in sorted(CORPUS.items()))
    return "file\texpected\thow\n" + "".join(rows)


def files() -> dict[str, bytes]:
    """Every file of the crafted corpus by name, MANIFEST.tsv included."""
    built = {name: item.build() for name, item in CORPUS.items()}
    return built | {"MANIFEST.tsv": manifest().encode()}


def differences(directory: Path = CRAFTED) -> list[str]:
    """Names of the files that are missing from ``directory``, differ, or should not
    be there."""
    wanted = files()
    present = {p.name for p in directory.iterdir()} if directory.is_dir() else set()
    wrong = [
        n for n, data in wanted.items() if n not in present or (directory / n).read_bytes() != data
    ]
    return sorted(wrong + sorted(present - set(wanted)))
