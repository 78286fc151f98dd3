"""mirage.image: reading headers (from_bytes, info) without decoding pixels, lazy
decoding, the pixel budget at the header, the allowlist, and bad headers."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import Image as PILImage

from mirage import codec
from mirage.errors import DecodeFailed, TooManyPixels, TruncatedImage, UnsupportedImageFormat
from mirage.formats import FORMATS
from mirage.image import (
    DEFAULT_MAX_PIXELS,
    Info,
    crop,
    from_bytes,
    info,
    resize,
    thumbnail,
    to_bytes,
)
from tests.conftest import SAMPLES, exif_bytes, gradient, open_bytes
from tests.imaging import _png_with_exif_after_idat, animation, encoded


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def idat_span(png: bytes) -> tuple[int, int]:
    """Start and end of the first IDAT chunk's payload in ``png``."""
    start = png.index(b"IDAT") + 4
    (length,) = struct.unpack(">I", png[start - 8 : start - 4])
    return start, start + length


# --- from_bytes: what the header says ----------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_from_bytes_reads_header(fmt: str) -> None:
    # An odd, non-square size catches swapped or rounded dimensions.
    data = encoded(gradient((37, 23)), fmt)
    image = from_bytes(data)
    assert image.format == fmt
    assert (image.width, image.height) == (37, 23)
    assert image.byte_size == len(data)
    assert image.frames == 1
    assert image.orientation == 1


@pytest.mark.parametrize("wrap", [bytearray, memoryview], ids=lambda t: t.__name__)
def test_from_bytes_accepts_any_buffer(wrap: Callable[[bytes], object]) -> None:
    # The NIF hands over a cffi buffer, not bytes.
    data = encoded(gradient((20, 10)), "png")
    image = from_bytes(wrap(data))  # type: ignore[arg-type]
    assert (image.format, image.width, image.height, image.byte_size) == ("png", 20, 10, len(data))
    out, _ = resize(image, 5, 5)
    assert open_bytes(out).size == (5, 5)


@pytest.mark.parametrize(("fmt", "count"), [("gif", 5), ("webp", 4), ("png", 3), ("tiff", 2)])
def test_from_bytes_counts_frames(fmt: str, count: int) -> None:
    # Distinct colours, or GIF's writer merges identical frames.
    frames = [PILImage.new("RGB", (30, 20), (40 * i, 255 - 40 * i, 0)) for i in range(count)]
    data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:])
    assert from_bytes(data).frames == count


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpg", "webp", "png", "tiff"])
def test_from_bytes_reads_exif_orientation(fmt: str, orientation: int) -> None:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    data = encoded(gradient((30, 20)), fmt, exif=exif.tobytes())
    assert from_bytes(data).orientation == orientation


@pytest.mark.parametrize("bogus", [0, 9, 300])
def test_out_of_range_orientation_reads_as_upright(bogus: int) -> None:
    exif = PILImage.Exif()
    exif[0x0112] = bogus
    image = from_bytes(encoded(gradient((30, 20)), "jpg", exif=exif.tobytes()))
    assert image.orientation == 1
    assert open_bytes(resize(image, 30, 20)[0]).size == (30, 20)


def test_sample_photo() -> None:
    # The example in lib/mirage.ex's moduledoc.
    data = (SAMPLES / "rocket.jpg").read_bytes()
    image = from_bytes(data)
    assert (image.format, image.width, image.height) == ("jpg", 640, 427)
    out, thumb = resize(image, 128, 128)
    assert (thumb.format, thumb.width, thumb.height, thumb.byte_size) == ("jpg", 128, 128, len(out))


# --- from_bytes does not decode pixels ---------------------------------------------------------


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every pixel load Pillow performs (all decode paths pass Image.load)."""
    calls: list[str] = []
    original = PILImage.Image.load

    def load(self: PILImage.Image):  # type: ignore[no-untyped-def]
        calls.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(PILImage.Image, "load", load)
    return calls


@pytest.mark.parametrize("fmt", FORMATS)
def test_from_bytes_does_not_decode(fmt: str, decode_calls: list[str]) -> None:
    data = encoded(gradient((64, 48)), fmt)
    decode_calls.clear()  # encoding the fixture image loaded it
    image = from_bytes(data)
    assert decode_calls == []
    # The detector itself works: an operation that needs pixels does load them.
    resize(image, 8, 8)
    assert decode_calls


@pytest.mark.parametrize("fix_crc", [False, True], ids=["stale-crc", "valid-crc"])
def test_corrupt_png_body_passes_from_bytes_and_fails_resize(fix_crc: bool) -> None:
    data = bytearray(encoded(gradient((64, 48)), "png", compress_level=9))
    start, end = idat_span(bytes(data))
    middle = (start + end) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    if fix_crc:
        # Only zlib can now tell, not the chunk checksum.
        data[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(data[start - 4 : end])))
    image = from_bytes(bytes(data))
    assert (image.format, image.width, image.height) == ("png", 64, 48)
    with pytest.raises((DecodeFailed, TruncatedImage)):
        resize(image, 16, 16)


def test_truncated_jpeg_body_fails_at_resize() -> None:
    noise = PILImage.effect_noise((160, 120), 80).convert("RGB")
    data = encoded(noise, "jpg")
    cut = data[: len(data) // 2]
    assert cut.find(b"\xff\xda") > 0, "the cut must fall inside the scan data"
    image = from_bytes(cut)
    assert (image.width, image.height) == (160, 120)
    with pytest.raises(TruncatedImage):
        resize(image, 32, 24)


def test_jpeg_cut_before_scan_is_truncated() -> None:
    data = encoded(gradient((64, 48)), "jpg")
    cut = data[: data.index(b"\xff\xda")]
    with pytest.raises(TruncatedImage):
        resize(from_bytes(cut), 16, 16)


# --- error paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        random.Random(1234).randbytes(4096),
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
    ],
    ids=["empty", "text", "random", "eps", "pdf"],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedImageFormat) as info:
        from_bytes(data)
    assert info.value.reason == "unsupported_image_format"


@pytest.mark.parametrize("fmt", ["png", "jpg", "gif"])
def test_header_cut_short_is_truncated(fmt: str) -> None:
    data = encoded(gradient((64, 48)), fmt)
    with pytest.raises(TruncatedImage):
        from_bytes(data[:20])


@pytest.mark.parametrize("prefix", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"GIF89a"])
def test_whole_signature_alone_is_truncated(prefix: bytes) -> None:
    # Too short for any plugin, but a whole signature: the start of an image.
    with pytest.raises(TruncatedImage):
        from_bytes(prefix)


@pytest.mark.parametrize("prefix", [b"\x89PNG", b"\xff", b"GIF8", b"\x89"])
def test_part_of_a_signature_identifies_no_format(prefix: bytes) -> None:
    with pytest.raises(UnsupportedImageFormat):
        from_bytes(prefix)


def test_from_bytes_pixel_budget() -> None:
    data = encoded(gradient((100, 50)), "png")
    assert from_bytes(data, max_pixels=5000).width == 100  # the budget is inclusive
    with pytest.raises(TooManyPixels):
        from_bytes(data, max_pixels=4999)


def test_default_budget_refuses_a_huge_header() -> None:
    # A 9000x9000 IHDR over an empty body: refused from the header alone.
    ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")
    assert 9000 * 9000 > DEFAULT_MAX_PIXELS
    with pytest.raises(TooManyPixels):
        from_bytes(data)


def translucent(size: tuple[int, int]) -> PILImage.Image:
    """A gradient at half opacity (an opaque RGBA image may be written without alpha)."""
    im = gradient(size).convert("RGBA")
    im.putalpha(128)
    return im


# --- info --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "im", "mode", "alpha"),
    [
        ("jpg", gradient((37, 23)), "RGB", False),
        ("jpg", gradient((37, 23)).convert("L"), "L", False),
        ("jpg", gradient((37, 23)).convert("CMYK"), "CMYK", False),
        ("png", gradient((37, 23)), "RGB", False),
        ("png", translucent((37, 23)), "RGBA", True),
        ("png", gradient((37, 23)).convert("LA"), "LA", True),
        ("png", gradient((37, 23)).convert("P"), "P", False),
        ("png", PILImage.new("I;16", (37, 23)), "I;16", False),
        ("gif", gradient((37, 23)), "P", False),
        ("webp", gradient((37, 23)), "RGB", False),
        ("webp", translucent((37, 23)), "RGBA", True),
        ("bmp", gradient((37, 23)), "RGB", False),
        ("tiff", gradient((37, 23)).convert("LAB"), "LAB", False),
        ("tiff", translucent((37, 23)), "RGBA", True),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_info_fields(fmt: str, im: PILImage.Image, mode: str, alpha: bool) -> None:
    got = info(encoded(im, fmt))
    assert got == Info(fmt, 37, 23, 1, 1, alpha, mode)


def test_info_palette_transparency_is_alpha() -> None:
    im = PILImage.new("P", (20, 10), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(0, (0, 0, 10, 10))  # the transparent index must be in use (GIF drops it otherwise)
    for fmt in ("gif", "png"):
        got = info(encoded(im, fmt, transparency=0))
        assert (got.mode, got.has_alpha) == ("P", True)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_info_orientation_and_stored_size(orientation: int) -> None:
    for fmt in ("jpg", "webp", "png", "tiff"):
        got = info(encoded(gradient((30, 20)), fmt, exif=exif_bytes(orientation)))
        assert (got.width, got.height, got.orientation) == (30, 20, orientation), fmt


@pytest.mark.parametrize("fmt", ["gif", "webp", "png"])
def test_info_counts_animation_frames(fmt: str) -> None:
    assert info(animation(fmt)).frames == 3


INFO_SOURCES: dict[str, Callable[[], bytes]] = {
    **{fmt: (lambda fmt=fmt: encoded(gradient((64, 48)), fmt)) for fmt in FORMATS},
    "jpg-exif": lambda: encoded(gradient((64, 48)), "jpg", exif=exif_bytes(6)),
    "png-exif-after-idat": lambda: _png_with_exif_after_idat(exif_bytes(6)),
    "gif-animated": lambda: animation("gif"),
    "webp-animated": lambda: animation("webp"),
    "apng": lambda: animation("png"),
}


@pytest.mark.parametrize("name", INFO_SOURCES)
def test_info_decodes_no_pixels(name: str, pixel_loads: list[str]) -> None:
    data = INFO_SOURCES[name]()
    pixel_loads.clear()  # building the fixture loaded pixels
    got = info(data)
    assert pixel_loads == []
    if "exif" in name:
        assert got.orientation == 6  # found without decoding, even after the image data
    # The spy works: decoding does show up.
    thumbnail(data, 8, 8)
    assert pixel_loads


def test_info_budget_and_allowlist() -> None:
    data = encoded(gradient((100, 50)), "png")
    assert info(data, max_pixels=5000).width == 100
    with pytest.raises(TooManyPixels):
        info(data, max_pixels=4999)
    with pytest.raises(UnsupportedImageFormat):
        info(data, allowed_formats=("jpg",))


# --- allowlist ---------------------------------------------------------------------------------


def test_allowlist_refuses_other_formats() -> None:
    png = encoded(gradient((20, 10)), "png")
    jpg = encoded(gradient((20, 10)), "jpg")
    for call in (from_bytes, info):
        with pytest.raises(UnsupportedImageFormat):
            call(png, allowed_formats=("jpg",))
        assert call(jpg, allowed_formats=("jpg",)).format == "jpg"
    with pytest.raises(UnsupportedImageFormat):
        thumbnail(png, 5, 5, allowed_formats=("jpg",))
    assert open_bytes(thumbnail(jpg, 5, 5, allowed_formats=["jpg"])[0]).size == (5, 5)


def test_unknown_format_in_allowlist() -> None:
    with pytest.raises(ValueError):
        from_bytes(encoded(gradient((20, 10)), "png"), allowed_formats=("png", "heic"))


def test_image_keeps_its_allowlist_for_later_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    original = codec.open_image

    def spy(data: bytes, allowed=FORMATS):  # type: ignore[no-untyped-def]
        calls.append(tuple(allowed))
        return original(data, allowed)

    image = from_bytes(encoded(gradient((40, 30)), "jpg"), allowed_formats=("jpg", "png"))
    monkeypatch.setattr(codec, "open_image", spy)
    thumbnail(image, 10, 10)
    crop(image, 0, 0, 5, 5)
    to_bytes(image)
    assert calls and set(calls) == {("jpg", "png")}
