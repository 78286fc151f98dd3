"""Precise reasons (issue 11): each reason means what its documentation says, decided
by what the bytes say rather than by where Pillow's parser happened to stop.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from PIL import Image as PILImage

from mirage import errors, evidence
from mirage.errors import MirageError
from mirage.image import from_bytes, thumbnail
from tests import crafted
from tests.conftest import CORPUS, NO_CORPUS, encode, gradient

# For each reason a source file can produce, real corpus files that must produce it
# (encode_failed and internal_error come from no input file). The shared corpus has
# one file of zero size and none of the structure floods too_complex refuses: the
# project's crafted corpus (test/fixtures/crafted, tests/crafted.py) adds those.
TABLE: dict[str, list[str]] = {
    "unsupported_image_format": [
        "synthetic/empty.bin",
        "synthetic/one_byte.bin",
        "synthetic/random_4096.bin",
        "bmp/pillow/clipboard.dib",  # a bare DIB: not a BMP file
        "pngsuite/pngsuite/xs1n0g01.png",  # broken signatures
        "pngsuite/pngsuite/xs2n0g01.png",
        "pngsuite/pngsuite/xs4n0g01.png",
        "pngsuite/pngsuite/xcrn0g04.png",
    ],
    "truncated_image": [
        "synthetic/png_signature_only.png",
        "synthetic/jpeg_soi_only.jpg",
        "synthetic/testorig_trunc_at_4.jpg",
        "synthetic/testorig_trunc_at_100.jpg",
        "synthetic/testorig_trunc_50pct.jpg",
        "synthetic/cat_progressive_trunc_50pct.jpg",
        "png/pillow/truncated_image.png",
        "jpeg/pillow/truncated_jpeg.jpg",
        "bmp/pillow/bmp__b__shortfile.bmp",
        "bmp/image-rs/bmp__images__pal4rlecut.bmp",
    ],
    "too_many_pixels": [
        "bmp/pillow/bmp__b__reallybig.bmp",
        "bmp/image-rs/bad__bmp__Bad_height.bmp",
        "synthetic/jpeg_sof_9000x9000_tiny.jpg",
        "synthetic/png_9000x9000_rgba_empty_idat.png",
    ],
    "invalid_dimensions": [
        "hostile/pillow/zero_width.gif",
    ],
    "decode_failed": [
        "pngsuite/pngsuite/xc1n0g08.png",  # colour type 1
        "pngsuite/pngsuite/xd0n2c08.png",  # bit depth 0
        "pngsuite/pngsuite/xhdn0g08.png",  # IHDR checksum
        "pngsuite/pngsuite/xcsn0g01.png",  # IDAT checksum
        "png/pillow/broken.png",
        "png/pillow/unknown_compression_method.png",
        "bmp/pillow/bmp__b__badbitcount.bmp",  # 30000 bits a pixel
        "bmp/pillow/bmp__b__badheadersize.bmp",
        "bmp/pillow/bmp__b__badpalettesize.bmp",
        "bmp/image-rs/bad__bmp__Bad_clrsUsed.bmp",
    ],
    "unsupported_feature": [
        "bmp/pillow/bmp__q__pal2.bmp",  # 2 bits a pixel
        "bmp/image-rs/bmp__images__pal2color.bmp",
        "bmp/image-rs/bmp__images__rgb24rle24.bmp",  # RLE24
        "bmp/pillow/bmp__g__rgb32bf.bmp",  # bitfields
        "bmp/pillow/bmp__q__rgba16-4444.bmp",
        "bmp/image-rs/bmp__images__rgba32-61754.bmp",
        "bmp/pillow/bmp__q__pal8os2v2-16.bmp",  # OS/2 2.x short header
        "bmp/pillow/bmp__q__rgb24png.bmp",  # PNG inside a BMP
        "tiff/image-rs/tiff__testsuite__rgb32f_color.tiff",  # 32-bit float
        "tiff/image-rs/tiff__testsuite__rgb32f_bw.tiff",
        "tiff/pillow/hopper_unknown_pixel_mode.tif",  # 32-bit integer RGB
        "jpeg/libjpeg-turbo/monkey12.jpg",  # 12-bit JPEG
    ],
}

ROWS = [(reason, name) for reason, names in TABLE.items() for name in names]
CRAFTED_ROWS = sorted((item.reason, name) for name, item in crafted.CORPUS.items())


def reason_for(data: bytes) -> str:
    """The reason the first failing step gives: reading the header, then decoding."""
    try:
        thumbnail(from_bytes(data), 32, 32, format="png")
    except MirageError as exc:
        return exc.reason
    return "ok"


@pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").is_file(), reason=NO_CORPUS)
@pytest.mark.parametrize(("reason", "name"), ROWS, ids=[f"{r}:{n}" for r, n in ROWS])
def test_corpus_file_gives_its_reason(reason: str, name: str) -> None:
    assert reason_for((CORPUS / name).read_bytes()) == reason


@pytest.mark.parametrize(
    ("reason", "name"), CRAFTED_ROWS, ids=[f"{r}:{n}" for r, n in CRAFTED_ROWS]
)
def test_crafted_file_gives_its_reason(reason: str, name: str) -> None:
    assert reason_for((crafted.CRAFTED / name).read_bytes()) == reason


def test_the_tables_give_three_files_for_every_reason_from_data() -> None:
    from_data = set(errors.REASONS) - {"encode_failed", "internal_error"}
    files = {reason: len(names) for reason, names in TABLE.items()}
    for reason, _name in CRAFTED_ROWS:
        files[reason] = files.get(reason, 0) + 1
    assert set(files) == from_data
    assert {reason: n for reason, n in files.items() if n < 3} == {}


def test_the_crafted_corpus_is_what_its_generator_writes() -> None:
    # Regenerate with tools/crafted.py after changing tests/crafted.py.
    assert crafted.differences() == []
    rows = (crafted.CRAFTED / "MANIFEST.tsv").read_text().splitlines()[1:]
    assert len(rows) == len(crafted.CORPUS)
    assert sum(len(data) for data in crafted.files().values()) < 256 * 1024


# --- zero sizes ------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 13))
        + chunk(b"IEND", b"")
    )


def _patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _bmp(width: int, height: int) -> bytes:
    return _patched(encode(gradient((4, 4)), "BMP"), 18, "<ii", width, height)


def _jpeg(width: int, height: int) -> bytes:
    data = encode(gradient((4, 4)), "JPEG")
    sof = data.index(b"\xff\xc0")
    return _patched(data, sof + 5, ">HH", height, width)


ZERO_SIZED = {
    "png 0x4": _png_header(0, 4),
    "png 4x0": _png_header(4, 0),
    "bmp 0x4": _bmp(0, 4),
    "bmp 4x0": _bmp(4, 0),
    "jpg 0x4": _jpeg(0, 4),
    "jpg 0x0": _jpeg(0, 0),
}


@pytest.mark.parametrize("name", sorted(ZERO_SIZED))
def test_zero_width_or_height_is_invalid_dimensions(name: str) -> None:
    assert reason_for(ZERO_SIZED[name]) == "invalid_dimensions"


def test_the_same_files_with_a_size_are_fine() -> None:
    # The zero-sized fixtures differ from working files only in the size fields.
    assert reason_for(_bmp(4, 4)) == "ok"
    assert reason_for(_jpeg(4, 4)) == "ok"


# --- a few bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"\x00", b"\xff", b"\x89", b"G", b"GI", b"\x89PN", b"RIF"])
def test_a_few_bytes_identify_no_format(data: bytes) -> None:
    assert reason_for(data) == "unsupported_image_format"


@pytest.mark.parametrize("data", [b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM"])
def test_a_whole_signature_and_nothing_else_is_truncated(data: bytes) -> None:
    assert reason_for(data) == "truncated_image"


# --- truncated only when the data ends early ------------------------------------------------


def _rle8_bmp(rows: list[bytes], tail: bytes) -> bytes:
    """A 4x4 8-bit RLE BMP whose pixel data is ``rows`` then ``tail``."""
    pixels = b"".join(rows) + tail
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    info = struct.pack("<IiiHHIIiiII", 40, 4, 4, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return header + info + palette + pixels


ROW = b"\x04\x07\x00\x00"  # four pixels of index 7, end of line


def test_rle_bmp_fixture_decodes_when_whole() -> None:
    assert reason_for(_rle8_bmp([ROW] * 4, b"\x00\x01")) == "ok"


def test_rle_bmp_cut_short_is_truncated() -> None:
    assert reason_for(_rle8_bmp([ROW] * 2, b"")) == "truncated_image"


def test_rle_bmp_ending_its_bitmap_early_is_corrupt_not_truncated() -> None:
    # Same shortfall of pixels, but the data goes on: it did not end early.
    assert reason_for(_rle8_bmp([ROW] * 2, b"\x00\x01" + b"\x00" * 32)) == "decode_failed"


def test_evidence_reads_declared_sizes() -> None:
    assert evidence.declared_size("png", _png_header(7, 3)) == (7, 3)
    assert evidence.declared_size("bmp", _bmp(5, -6)) == (5, 6)
    assert evidence.declared_size("jpg", _jpeg(9, 2)) == (9, 2)
    assert evidence.declared_size("gif", encode(gradient((6, 5)), "GIF")) == (6, 5)
    assert evidence.declared_size("tiff", encode(gradient((6, 5)), "TIFF")) == (6, 5)
    assert evidence.declared_size("webp", encode(gradient((6, 5)), "WEBP")) == (6, 5)
    assert evidence.declared_size("webp", encode(gradient((6, 5)), "WEBP", lossless=True)) == (6, 5)
    assert evidence.declared_size("png", b"junk") is None


def test_a_tiff_codec_this_build_lacks_is_unsupported() -> None:
    # WebP-compressed TIFF: valid, decodable only if libtiff was built with WebP.
    path = CORPUS / "tiff" / "pillow" / "hopper_webp.tif"
    if not path.is_file():
        pytest.skip(NO_CORPUS)
    try:
        PILImage.open(path).load()
    except OSError:
        assert reason_for(path.read_bytes()) == "unsupported_feature"
    else:
        assert reason_for(path.read_bytes()) == "ok"
