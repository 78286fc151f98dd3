"""A cheap walk over a file's structure, before Pillow parses it, to bound the work.

Pillow's plugins parse headers in Python one marker, chunk, page or frame at a time,
and some work scales with what the file merely claims: thousands of empty JPEG
scans (each a full pass of libjpeg over the image), a million PNG chunks, a GIF
whose later frames enlarge the canvas far beyond the header's size. :func:`survey`
walks the same structure with few Python steps and a hard cap on each count, so a
hostile file is refused before any of that work, and it reports what the budget
needs to know: each GIF frame's canvas as Pillow will decode it, and the number of
frames or pages without letting Pillow walk the whole file.

Anything the walk does not understand ends it quietly: Pillow then parses the file
and reports what is wrong with it. The walk only ever refuses on counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mirage.errors import TooComplex

#: Most JPEG scans (SOS markers) decoded by default. libjpeg's standard progressive
#: script writes 10 and encoders that optimise the script rarely reach 30; every
#: scan is a pass over the whole image, so thousands of near-empty ones cost minutes.
DEFAULT_MAX_SCANS = 100

#: Most segments before a JPEG's first scan: Pillow keeps each one (a million empty
#: APP markers cost seconds and hundreds of MB). An ICC profile split over 255 APP2
#: segments still fits.
MAX_JPEG_SEGMENTS = 1024
#: Most bytes that are not a marker where one is expected (JPEG, GIF): Pillow skips
#: them one at a time in Python.
MAX_JUNK = 1 << 16
#: Most PNG chunks: a base that covers text-heavy files and small animations, plus
#: one per KiB (libpng writes 8 KiB image data chunks, Pillow 64 KiB).
PNG_CHUNKS_BASE = 8192
#: The least pixels a frame or page is charged with (an animation of tiny frames costs
#: far more per frame than its pixels). The header read counts at most
#: ``max_pixels // FRAME_FLOOR`` frames or pages, as many as the budget could ever
#: decode (and never fewer than MIN_FRAMES_WALKED). A file with more reports one
#: frame over that limit: a lower bound, already over the budget for any operation
#: on all frames, while its first frame stays usable.
FRAME_FLOOR = 64 * 64
MIN_FRAMES_WALKED = 1024
#: GIF data sub-blocks (of extensions and image data) walked: a base, eight per frame
#: and one per 64 bytes read. Encoders write 255-byte sub-blocks; a flood of 1-byte
#: ones makes Pillow keep each comment block as its own object (hundreds of MB for
#: a few MB of file) and both walks loop once per block.
GIF_BLOCKS_BASE = 1 << 16
#: Most entries in a TIFF's first directory: Pillow parses each one in Python, and a
#: BigTIFF's count has no 16-bit ceiling. Real files have a few dozen.
MAX_TIFF_ENTRIES = 4096
#: The least pixels a TIFF strip or tile is charged with (16x16, the smallest tile
#: TIFF allows): Pillow handles each one in Python, so a tall image of one-row strips
#: costs far more per strip than its pixels.
STRIP_FLOOR = 16 * 16
#: How many pixels each pixel of an RLE-compressed BMP is charged: Pillow decodes RLE
#: in Python, with a loop step per pixel where a row is padded or 4-bit runs expand,
#: many times slower than the formats decoded in C.
RLE_WEIGHT = 8


@dataclass(frozen=True)
class Survey:
    """What the walk learnt. ``None`` means "not surveyed: ask Pillow" (cheap there)."""

    #: Frames or pages, counted up to one over the walk's limit (see FRAME_FLOOR).
    frames: int | None = None
    #: GIF only: each frame's canvas area in pixels as Pillow decodes it (the canvas
    #: grows to hold any frame that extends past it, and never shrinks).
    canvases: tuple[int, ...] | None = None
    scans: int = 0


def survey(
    data: bytes | memoryview,
    allowed: tuple[str, ...],
    *,
    max_pixels: int,
    max_scans: int = DEFAULT_MAX_SCANS,
) -> Survey:
    """Walk ``data``'s structure if it is one of the formats Pillow parses slowly.

    Raises :class:`~mirage.errors.TooComplex` when a count passes its limit.
    """
    head = bytes(data[:8])
    max_frames = max(MIN_FRAMES_WALKED, max_pixels // FRAME_FLOOR)
    if head.startswith(b"\xff\xd8\xff") and "jpg" in allowed:
        return _jpeg(data, max_scans)
    if head == b"\x89PNG\r\n\x1a\n" and "png" in allowed:
        return _png(data)
    if head[:6] in (b"GIF87a", b"GIF89a") and "gif" in allowed:
        return _gif(data, max_frames)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+") and "tiff" in allowed:
        return _tiff(data, max_frames, max_pixels)
    if head[:2] == b"BM" and "bmp" in allowed:
        _bmp(data, max_pixels)
    return Survey()


def _u16be(data: bytes | memoryview, pos: int) -> int:
    return (data[pos] << 8) | data[pos + 1]


def _u16le(data: bytes | memoryview, pos: int) -> int:
    return data[pos] | (data[pos + 1] << 8)


# BMP compressions Pillow decodes in Python: RLE8 and RLE4.
_BMP_RLE = frozenset({1, 2})


def _bmp(data: bytes | memoryview, max_pixels: int) -> None:
    if len(data) < 34 or int.from_bytes(data[14:18], "little") < 40:
        return  # OS/2 1.x headers have no compression field
    width = abs(int.from_bytes(data[18:22], "little", signed=True))
    height = abs(int.from_bytes(data[22:26], "little", signed=True))
    if int.from_bytes(data[30:34], "little") in _BMP_RLE:
        charged = width * height * RLE_WEIGHT
        if charged > max_pixels:
            raise TooComplex(
                f"an RLE BMP of {width}x{height} pixels, each charged {RLE_WEIGHT}, "
                f"exceeds the budget of {max_pixels}"
            )


# Start-of-frame markers of progressive JPEGs (Huffman or arithmetic coded).
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})

# Markers without a length (TEM, RSTn, SOI, EOI), as in Pillow's parser.
_BARE_MARKERS = frozenset({0x01, *range(0xD0, 0xDA)})


def _jpeg(data: bytes | memoryview, max_scans: int) -> Survey:
    size = len(data)
    pos, segments, junk = 2, 0, 0
    first_scan, progressive = None, False
    while pos + 1 < size:
        if data[pos] != 0xFF:
            # Pillow skips junk a byte at a time; find the next 0xFF in one step.
            found = bytes(data[pos : pos + MAX_JUNK - junk + 1]).find(b"\xff")
            skipped = found if found >= 0 else MAX_JUNK - junk + 1
            junk += skipped
            if junk > MAX_JUNK:
                raise TooComplex(f"more than {MAX_JUNK} stray bytes between JPEG markers")
            pos += skipped
            continue
        marker = data[pos + 1]
        if marker in (0x00, 0xFF):
            pos += 1
            junk += 1
            if junk > MAX_JUNK:
                raise TooComplex(f"more than {MAX_JUNK} stray bytes between JPEG markers")
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise TooComplex(f"more than {MAX_JPEG_SEGMENTS} JPEG segments before the image")
        if marker == 0xDA:
            first_scan = pos
            break
        progressive = progressive or marker in _PROGRESSIVE
        if marker in _BARE_MARKERS:
            pos += 2
            continue
        if pos + 4 > size:
            break
        pos += 2 + _u16be(data, pos + 2)
    if first_scan is None:
        return Survey()
    if not progressive:
        # libjpeg reads a sequential JPEG's scans once each and fails at a scan out
        # of place: extra scans cannot multiply the work, so the file (a 12 MP photo
        # is megabytes) is not read through to count them.
        return Survey(scans=1)
    # Entropy-coded data stuffs every 0xFF with 0x00, so each FF DA from here on is
    # a scan header (of this picture or, in an MPO, of the next one).
    scans = _count(data, b"\xff\xda", first_scan)
    if scans > max_scans:
        raise TooComplex(f"{scans} JPEG scans exceed the limit of {max_scans}")
    return Survey(scans=scans)


def _count(data: bytes | memoryview, needle: bytes, start: int) -> int:
    """Occurrences of a two-byte ``needle`` from ``start``, without copying a borrowed
    buffer whole."""
    if isinstance(data, bytes):
        return data.count(needle, start)
    total, step = 0, 1 << 20
    for at in range(start, len(data), step):
        # One byte of overlap: a needle across the boundary counts once, in this step.
        total += bytes(data[at : at + step + 1]).count(needle)
    return total


def _png(data: bytes | memoryview) -> Survey:
    size = len(data)
    limit = PNG_CHUNKS_BASE + size // 1024
    pos, chunks = 8, 0
    animated, controls, still_first = False, 0, False
    while pos + 8 <= size:
        chunks += 1
        if chunks > limit:
            raise TooComplex(f"more than {limit} PNG chunks")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = bytes(data[pos + 4 : pos + 8])
        if kind == b"IEND":
            break
        if kind == b"acTL":
            animated = True
        elif kind == b"fcTL":
            controls += 1
        elif kind == b"IDAT" and controls == 0:
            still_first = True  # a default image that is not part of the animation
        pos += 12 + length
    if not animated:
        return Survey()
    # The frames the file holds, counted as Pillow counts them (acTL's own count is
    # only a claim: a 2-frame file may declare a billion).
    return Survey(frames=max(1, controls + still_first))


def _gif_blocks(data: bytes | memoryview, pos: int, blocks: int, base: int) -> tuple[int, int]:
    """The position after a run of data sub-blocks (or the end of the data), and the
    count of sub-blocks so far, ``blocks`` before the run.

    Raises :class:`TooComplex` once the count passes ``base`` plus one per 64 bytes.
    """
    size = len(data)
    while pos < size:
        length = data[pos]
        pos += 1 + length
        blocks += 1
        if blocks > base + pos // 64:
            raise TooComplex(f"more than {blocks - 1} GIF data sub-blocks in {pos} bytes")
        if length == 0:
            break
    return pos, blocks


def _gif(data: bytes | memoryview, max_frames: int) -> Survey:
    size = len(data)
    if size < 13:
        return Survey()
    width, height = _u16le(data, 6), _u16le(data, 8)
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    canvases: list[int] = []
    junk = blocks = 0
    while pos < size:
        tag = data[pos]
        if tag == 0x3B:  # trailer
            break
        base = GIF_BLOCKS_BASE + 8 * len(canvases)
        if tag == 0x21:  # extension: label, then sub-blocks
            pos, blocks = _gif_blocks(data, pos + 2, blocks, base)
        elif tag == 0x2C:  # image descriptor
            if pos + 11 > size:
                break
            x1 = _u16le(data, pos + 1) + _u16le(data, pos + 5)
            y1 = _u16le(data, pos + 3) + _u16le(data, pos + 7)
            # Pillow grows the canvas to hold a frame that extends past it.
            width, height = max(width, x1), max(height, y1)
            canvases.append(width * height)
            if len(canvases) > max_frames:
                break  # enough to know that all frames can never fit the budget
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos, blocks = _gif_blocks(data, pos + 1, blocks, base)  # after the LZW code size
        else:
            # Pillow skips a stray byte at a time.
            junk += 1
            if junk > MAX_JUNK:
                raise TooComplex(f"more than {MAX_JUNK} stray bytes between GIF blocks")
            pos += 1
    if not canvases:
        return Survey()
    return Survey(frames=len(canvases), canvases=tuple(canvases))


def _tiff(data: bytes | memoryview, max_frames: int, max_pixels: int) -> Survey:
    size = len(data)
    order: Literal["little", "big"] = "little" if data[0] == 0x49 else "big"
    big = data[2 if order == "little" else 3] == 0x2B
    if big:
        if size < 16:
            return Survey()
        offset = int.from_bytes(data[8:16], order)
    else:
        offset = int.from_bytes(data[4:8], order)
    count_size, entry_size, next_size = (8, 20, 8) if big else (2, 12, 4)
    seen: set[int] = set()
    while offset and offset not in seen and offset + count_size <= size:
        seen.add(offset)
        if len(seen) > max_frames:
            break  # a lower bound, over the budget already
        entries = int.from_bytes(data[offset : offset + count_size], order)
        if len(seen) == 1:
            _tiff_first_page(data, offset, order, big, max_pixels)
        at = offset + count_size + entries * entry_size
        if at + next_size > size:
            break
        offset = int.from_bytes(data[at : at + next_size], order)
    return Survey(frames=len(seen)) if seen else Survey()


# TIFF tags of the first page's layout.
_WIDTH, _LENGTH, _SAMPLES, _ROWS, _PLANAR = 256, 257, 277, 278, 284
_TILE_WIDTH, _TILE_LENGTH = 322, 323
_STRIP_OFFSETS, _STRIP_COUNTS, _TILE_OFFSETS, _TILE_COUNTS = 273, 279, 324, 325
#: The EXIF and GPS sub-directories, read with the header (mirage.metadata).
_SUB_DIRECTORIES = (0x8769, 0x8825)

#: The most values, summed over a TIFF directory's entries, that Pillow may turn into
#: Python objects when a tag is read (the header read reads the first page's and its
#: EXIF and GPS directories). A rational costs as much as RATIONAL_COST integers.
#: A 16-bit colour map (196 608 values) fits. Strip and tile offsets and byte counts
#: are bounded by the layout instead.
MAX_TIFF_VALUES = 1 << 19
RATIONAL_COST = 64

# Bytes per value of TIFF's numeric types; BYTE, ASCII and UNDEFINED values stay bytes.
_NUMERIC_SIZES = {3: 2, 4: 4, 5: 8, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_RATIONALS = frozenset({5, 10})


@dataclass(frozen=True)
class _Entry:
    kind: int
    count: int
    #: The value, when it is one integer stored in the entry itself.
    value: int | None


def _tiff_directory(
    data: bytes | memoryview, offset: int, order: Literal["little", "big"], big: bool
) -> dict[int, _Entry]:
    """The entries of the directory at ``offset``, refused if there are too many or
    their values would cost too much to read."""
    count_size, entry_size, value_size = (8, 20, 8) if big else (2, 12, 4)
    entries = int.from_bytes(data[offset : offset + count_size], order)
    if entries > MAX_TIFF_ENTRIES:
        raise TooComplex(f"{entries} TIFF directory entries exceed {MAX_TIFF_ENTRIES}")
    pos = offset + count_size
    end = min(len(data), pos + entries * entry_size)
    found: dict[int, _Entry] = {}
    cost = 0
    for at in range(pos, end - entry_size + 1, entry_size):
        tag = int.from_bytes(data[at : at + 2], order)
        kind = int.from_bytes(data[at + 2 : at + 4], order)
        count = int.from_bytes(data[at + 4 : at + 4 + value_size], order)
        width = _NUMERIC_SIZES.get(kind)
        value = None
        if width is not None and count == 1 and width <= value_size and kind not in _RATIONALS:
            start = at + 4 + value_size
            value = int.from_bytes(data[start : start + width], order)
        found[tag] = _Entry(kind, count, value)
        if width is not None and tag not in (
            _STRIP_OFFSETS,
            _STRIP_COUNTS,
            _TILE_OFFSETS,
            _TILE_COUNTS,
        ):
            cost += count * (RATIONAL_COST if kind in _RATIONALS else 1)
            if cost > MAX_TIFF_VALUES:
                raise TooComplex(f"TIFF tag {tag}: more than {MAX_TIFF_VALUES} values to read")
    return found


def tiff_metadata(data: bytes | memoryview) -> None:
    """Check EXIF (a TIFF structure, after an optional ``Exif\\0\\0``) as the first
    page's directories are checked: its first directory and its EXIF and GPS ones.

    Raises :class:`~mirage.errors.TooComplex` where reading every tag would cost too
    much; anything the walk does not understand passes (Pillow reports it).
    """
    if bytes(data[:6]) == b"Exif\x00\x00":
        data = data[6:]
    head = bytes(data[:4])
    if head not in (b"II*\x00", b"MM\x00*") or len(data) < 8:
        return
    order: Literal["little", "big"] = "little" if head[0] == 0x49 else "big"
    offset = int.from_bytes(data[4:8], order)
    if 8 <= offset < len(data):
        _tiff_metadata(data, _tiff_directory(data, offset, order, False), order, False)


def _tiff_metadata(
    data: bytes | memoryview, entries: dict[int, _Entry], order: Literal["little", "big"], big: bool
) -> None:
    for tag in _SUB_DIRECTORIES:
        sub = entries.get(tag)
        if sub is not None and sub.value and sub.value < len(data):
            _tiff_directory(data, sub.value, order, big)


def _tiff_first_page(
    data: bytes | memoryview,
    offset: int,
    order: Literal["little", "big"],
    big: bool,
    max_pixels: int,
) -> None:
    entries = _tiff_directory(data, offset, order, big)
    _tiff_metadata(data, entries, order, big)
    _tiff_layout(entries, max_pixels)


def _tiff_layout(entries: dict[int, _Entry], max_pixels: int) -> None:
    """Refuse a first page whose strips or tiles cost more than its pixels: more of
    them than its size needs (Pillow decodes every one, going round the image again),
    or so many that, each charged at least STRIP_FLOOR pixels, they exceed the budget.
    """

    def value(tag: int, default: int = 0) -> int:
        entry = entries.get(tag)
        return default if entry is None or entry.value is None else entry.value

    width, length = value(_WIDTH), value(_LENGTH)
    if _TILE_OFFSETS in entries:
        piece_width, piece_length = value(_TILE_WIDTH), value(_TILE_LENGTH)
        pieces = entries[_TILE_OFFSETS].count
    elif _STRIP_OFFSETS in entries:
        piece_width, piece_length = width, min(value(_ROWS, length), length)
        pieces = entries[_STRIP_OFFSETS].count
    else:
        return
    if not (width and length and piece_width and piece_length):
        return  # Pillow or libtiff reports what is wrong
    planes = value(_SAMPLES, 1) if value(_PLANAR, 1) == 2 else 1
    needed = -(-width // piece_width) * -(-length // piece_length) * planes
    if pieces > needed:
        raise TooComplex(f"{pieces} TIFF strips or tiles where the image needs {needed}")
    if pieces * STRIP_FLOOR > max_pixels:
        raise TooComplex(
            f"{pieces} TIFF strips or tiles, at least {STRIP_FLOOR} pixels each, "
            f"exceed the budget of {max_pixels}"
        )
