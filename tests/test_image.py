"""mirage.image: header reading, lazy decoding, fill-resize geometry, formats and modes."""

from __future__ import annotations

import random
import struct
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from mirage.errors import (
    DecodeFailed,
    InvalidDimensions,
    MirageError,
    TooManyPixels,
    TruncatedImage,
    UnsupportedImageFormat,
)
from mirage.formats import FORMATS, PILLOW_NAME
from mirage.image import DEFAULT_MAX_PIXELS, Image, from_bytes, resize
from tests.conftest import (
    BLUE,
    GREEN,
    RED,
    SAMPLES,
    WHITE,
    bands,
    encode,
    gradient,
    is_close,
    open_bytes,
    quadrants,
)

# Lossy encoders get a high quality so colour checks are not about compression.
LOSSLESS_OPTIONS: dict[str, dict[str, object]] = {
    "jpg": {"quality": 95},
    "webp": {"lossless": True},
}


def encoded(im: PILImage.Image, fmt: str, **options: object) -> bytes:
    """``im`` as Mirage format ``fmt`` (e.g. "jpg")."""
    return encode(im, PILLOW_NAME[fmt], **{**LOSSLESS_OPTIONS.get(fmt, {}), **options})


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


# --- from_bytes: what the header says ------------------------------------------------------


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


# --- from_bytes does not decode pixels ------------------------------------------------------


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


# --- error paths ----------------------------------------------------------------------------


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


@pytest.mark.parametrize("prefix", [b"\x89PNG", b"\xff\xd8", b"GIF8"])
def test_partial_signature_is_truncated(prefix: bytes) -> None:
    # Too short for any plugin, but unmistakably the start of an image.
    with pytest.raises(TruncatedImage):
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


def test_resize_target_over_budget() -> None:
    image = from_bytes(encoded(gradient((20, 20)), "png"))
    assert open_bytes(resize(image, 100, 100, max_pixels=10_000)[0]).size == (100, 100)
    with pytest.raises(TooManyPixels):
        resize(image, 101, 100, max_pixels=10_000)
    with pytest.raises(TooManyPixels):
        resize(image, 8000, 8000)  # over the default budget


def test_resize_rechecks_source_against_its_budget() -> None:
    # The source must fit the budget of the operation that decodes it, too.
    image = from_bytes(encoded(gradient((100, 100)), "png"))
    with pytest.raises(TooManyPixels):
        resize(image, 10, 10, max_pixels=9_999)


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (0, 0), (-5, 10), (10, -1)])
def test_zero_or_negative_target_is_invalid(width: int, height: int) -> None:
    image = from_bytes(encoded(gradient((20, 20)), "png"))
    with pytest.raises(InvalidDimensions):
        resize(image, width, height)


@pytest.mark.parametrize("bad", [10.0, "10", None, True], ids=repr)
def test_non_int_target_is_a_type_error(bad: object) -> None:
    image = from_bytes(encoded(gradient((20, 20)), "png"))
    with pytest.raises(TypeError):
        resize(image, bad, 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        resize(image, 10, bad)  # type: ignore[arg-type]


# --- fill geometry ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ((300, 100), (50, 120)),  # wide to tall
        ((100, 300), (120, 50)),  # tall to wide
        ((40, 30), (400, 300)),  # upscale
        ((40, 30), (1, 1)),
        ((1, 1), (25, 17)),
        ((1000, 1), (1, 1000)),  # extreme aspect both ways
        ((97, 61), (97, 61)),  # same size
    ],
    ids=str,
)
def test_output_has_exact_size(source: tuple[int, int], target: tuple[int, int]) -> None:
    out, image = resize(from_bytes(encoded(gradient(source), "png")), *target)
    assert open_bytes(out).size == target
    assert (image.width, image.height) == target


def _fraction_close(im: PILImage.Image, colour: tuple[int, int, int]) -> float:
    raw = im.convert("RGB").tobytes()
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    return sum(is_close(p, colour) for p in pixels) / len(pixels)


@pytest.mark.parametrize(
    ("source", "target", "vertical"),
    [
        ((300, 100), (100, 100), True),  # crop only
        ((600, 200), (50, 50), True),  # crop and shrink
        ((300, 100), (20, 60), True),  # wide to tall
        ((100, 300), (100, 100), False),
        ((200, 600), (40, 40), False),
        ((100, 300), (60, 20), False),  # tall to wide
    ],
    ids=str,
)
def test_fill_keeps_the_centre_band(
    source: tuple[int, int], target: tuple[int, int], vertical: bool
) -> None:
    data = encoded(bands(source, [RED, GREEN, BLUE], vertical=vertical), "png")
    out = open_bytes(resize(from_bytes(data), *target)[0]).convert("RGB")
    width, height = target
    centre = out.getpixel((width // 2, height // 2))
    assert is_close(centre, GREEN, tolerance=2)
    # The filter may blend the outermost row/column with the neighbouring band.
    assert _fraction_close(out, GREEN) >= 0.9
    assert _fraction_close(out, RED) == 0
    assert _fraction_close(out, BLUE) == 0


def test_fill_crops_symmetrically() -> None:
    # 200x100 quadrants cropped to 100x100 keep all four quadrants, each a quarter.
    out = open_bytes(resize(from_bytes(encoded(quadrants((200, 100)), "png")), 100, 100)[0])
    out = out.convert("RGB")
    assert is_close(out.getpixel((25, 25)), RED, 2)
    assert is_close(out.getpixel((75, 25)), GREEN, 2)
    assert is_close(out.getpixel((25, 75)), BLUE, 2)
    assert is_close(out.getpixel((75, 75)), WHITE, 2)


def test_large_jpeg_downscale_keeps_the_centre() -> None:
    # Big enough that the JPEG is decoded at a reduced DCT scale before resampling.
    data = encoded(bands((1200, 400), [RED, GREEN, BLUE], vertical=True), "jpg")
    out = open_bytes(resize(from_bytes(data), 40, 40)[0]).convert("RGB")
    assert is_close(out.getpixel((20, 20)), GREEN)
    assert _fraction_close(out, GREEN) >= 0.9


# --- output format --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_resize_keeps_format(fmt: str) -> None:
    out, image = resize(from_bytes(encoded(gradient((80, 60)), fmt)), 33, 21)
    reopened = open_bytes(out)
    assert reopened.format == PILLOW_NAME[fmt]
    assert reopened.size == (33, 21)
    assert (image.format, image.width, image.height) == (fmt, 33, 21)
    assert image.byte_size == len(out)
    # The description of the result matches what from_bytes says of its bytes.
    again = from_bytes(out)
    assert (again.format, again.width, again.height, again.byte_size) == (fmt, 33, 21, len(out))


@pytest.mark.parametrize("fmt", FORMATS)
def test_resized_image_can_be_resized_again(fmt: str) -> None:
    source = quadrants((80, 60))
    _, first = resize(from_bytes(encoded(source, fmt)), 40, 30)
    out, second = resize(first, 20, 10)
    reopened = open_bytes(out)
    assert reopened.format == PILLOW_NAME[fmt]
    assert reopened.size == (20, 10)
    assert (second.format, second.width, second.height, second.byte_size) == (
        fmt,
        20,
        10,
        len(out),
    )
    # Still the same picture: the 4:3 -> 2:1 crop keeps the quadrants' corners.
    rgb = reopened.convert("RGB")
    assert is_close(rgb.getpixel((1, 1)), RED, 60)
    assert is_close(rgb.getpixel((18, 8)), WHITE, 60)


def test_animated_gif_starts_with_its_first_frame() -> None:
    # Whether later frames are kept or dropped, the picture shown first is frame 0.
    frames = [PILImage.new("RGB", (30, 20), c) for c in (RED, GREEN, BLUE)]
    data = encoded(frames[0], "gif", save_all=True, append_images=frames[1:])
    out = open_bytes(resize(from_bytes(data), 15, 10)[0])
    assert out.size == (15, 10)
    assert is_close(out.convert("RGB").getpixel((7, 5)), RED, 2)


# --- EXIF orientation -------------------------------------------------------------------------

# Where a pixel stored in the top-left / top-right corner is displayed, per the EXIF
# spec's description of each Orientation value (where row 0 and column 0 are shown).
DISPLAYED_AT: dict[int, tuple[str, str]] = {
    1: ("tl", "tr"),
    2: ("tr", "tl"),  # mirrored left-right
    3: ("br", "bl"),  # rotated 180
    4: ("bl", "br"),  # mirrored top-bottom
    5: ("tl", "bl"),  # transposed (row 0 shown as the left column)
    6: ("tr", "br"),  # rotated 90 degrees clockwise to display
    7: ("br", "tr"),  # transversed
    8: ("bl", "tl"),  # rotated 90 degrees counter-clockwise to display
}


def marked_landscape() -> PILImage.Image:
    """60x40 blue, with a red block in the stored top-left and a green one top-right."""
    im = PILImage.new("RGB", (60, 40), BLUE)
    im.paste(RED, (0, 0, 20, 14))
    im.paste(GREEN, (40, 0, 60, 14))
    return im


def corner_of(im: PILImage.Image, colour: tuple[int, int, int]) -> list[str]:
    width, height = im.size
    probes = {
        "tl": (3, 3),
        "tr": (width - 4, 3),
        "bl": (3, height - 4),
        "br": (width - 4, height - 4),
    }
    rgb = im.convert("RGB")
    return [name for name, xy in probes.items() if is_close(rgb.getpixel(xy), colour, 60)]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpg", "webp", "png", "tiff"])
def test_exif_orientation_comes_out_upright(fmt: str, orientation: int) -> None:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    data = encoded(marked_landscape(), fmt, exif=exif.tobytes())
    # Upright, orientations 5-8 are portrait; ask for exactly that size (no crop).
    target = (40, 60) if orientation >= 5 else (60, 40)
    out = open_bytes(resize(from_bytes(data), *target)[0])
    assert out.size == target
    red_at, green_at = DISPLAYED_AT[orientation]
    assert corner_of(out, RED) == [red_at]
    assert corner_of(out, GREEN) == [green_at]
    # The pixels are upright now; a tag saying otherwise would rotate them again.
    assert out.getexif().get(0x0112, 1) == 1


def test_orientation_applies_before_the_crop() -> None:
    # Stored 60x40 and tagged 6, it is displayed 40x60 with the markers along the right
    # edge, top and bottom. A 40x20 fill takes the display's middle rows: background only.
    # Cropping the stored landscape instead would keep the markers in the top corners.
    exif = PILImage.Exif()
    exif[0x0112] = 6
    data = encoded(marked_landscape(), "jpg", exif=exif.tobytes())
    out = open_bytes(resize(from_bytes(data), 40, 20)[0])
    assert corner_of(out, BLUE) == ["tl", "tr", "bl", "br"]


# --- pixel modes --------------------------------------------------------------------------------


def test_rgba_png_keeps_alpha() -> None:
    im = PILImage.new("RGBA", (40, 40), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (0, 0, 20, 40))  # left half fully transparent
    out = open_bytes(resize(from_bytes(encoded(im, "png")), 20, 20)[0])
    assert out.mode == "RGBA"
    assert out.getpixel((3, 10))[3] == 0
    assert out.getpixel((16, 10)) == (255, 0, 0, 255)


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_palette_with_transparency_keeps_it(fmt: str) -> None:
    im = PILImage.new("P", (40, 40), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (3 * 254))
    im.paste(0, (0, 0, 20, 40))
    data = encoded(im, fmt, transparency=0)
    out = open_bytes(resize(from_bytes(data), 20, 20)[0])
    if fmt == "png":
        # Palette pixels are resampled as RGBA, so PNG output is truecolour with alpha.
        assert out.mode == "RGBA"
    rgba = out.convert("RGBA")
    assert rgba.getpixel((3, 10))[3] == 0
    assert rgba.getpixel((16, 10)) == (255, 0, 0, 255)


def test_palette_without_transparency_has_no_alpha() -> None:
    im = gradient((40, 40)).convert("P")
    out = open_bytes(resize(from_bytes(encoded(im, "png")), 20, 20)[0])
    assert out.mode == "RGB"


def test_sixteen_bit_png_stays_sixteen_bit() -> None:
    im = PILImage.new("I;16", (64, 64))
    im.putdata([(x + y) * 500 for y in range(64) for x in range(64)])  # up to 63000
    data = encoded(im, "png")
    out = open_bytes(resize(from_bytes(data), 32, 32)[0])
    assert out.format == "PNG"
    assert out.mode in ("I;16", "I")
    low, high = out.getextrema()
    # Values beyond 8 bits survive: the data was not squeezed to 0..255.
    assert low < 2000 and high > 60000


def test_cmyk_jpeg_stays_cmyk_jpeg() -> None:
    colour = (200, 50, 30)
    im = PILImage.new("RGB", (80, 60), colour).convert("CMYK")
    out = open_bytes(resize(from_bytes(encoded(im, "jpg")), 40, 30)[0])
    assert (out.format, out.mode, out.size) == ("JPEG", "CMYK", (40, 30))
    assert is_close(out.convert("RGB").getpixel((20, 15)), colour, 8)


def test_grayscale_jpeg_stays_grayscale() -> None:
    im = gradient((64, 48)).convert("L")
    out = open_bytes(resize(from_bytes(encoded(im, "jpg")), 32, 24)[0])
    assert (out.format, out.mode) == ("JPEG", "L")


def test_lab_tiff_is_not_made_transparent() -> None:
    lab = encoded(PILImage.new("RGB", (40, 30), (200, 30, 30)).convert("LAB"), "tiff")
    out = open_bytes(resize(from_bytes(lab), 10, 10)[0])
    assert "A" not in out.getbands() or out.getchannel("A").getextrema() == (255, 255)


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tiff"])
def test_icc_profile_is_kept(fmt: str) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(gradient((40, 30)), fmt, icc_profile=profile)
    out = open_bytes(resize(from_bytes(data), 20, 15)[0])
    assert out.info.get("icc_profile") == profile


# --- threads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_one_image_resized_from_many_threads(fmt: str) -> None:
    image = from_bytes(encoded(gradient((320, 240)), fmt))
    expected = resize(image, 123, 77)[0]
    barrier = threading.Barrier(16)

    def work(_: int) -> bytes:
        barrier.wait()  # start together, so the resizes really overlap
        return resize(image, 123, 77)[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(16)))
    assert all(result == expected for result in results)


def test_resized_image_shared_across_threads() -> None:
    # An Image returned by resize holds decoded pixels; they too are shared read-only.
    _, image = resize(from_bytes(encoded(gradient((200, 150)), "png")), 100, 75)
    expected = resize(image, 41, 29)[0]
    barrier = threading.Barrier(16)

    def work(_: int) -> bytes:
        barrier.wait()
        return resize(image, 41, 29)[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(work, range(16))) == {expected}


def test_image_is_immutable() -> None:
    image = from_bytes(encoded(gradient((20, 10)), "png"))
    with pytest.raises(AttributeError):
        image.width = 5  # type: ignore[misc]
    assert isinstance(image, Image)


def test_errors_are_mirage_errors_with_known_reasons() -> None:
    # Whatever the path, a failure is a MirageError the transports can name.
    for data in (b"", b"\x89PNG\r\n\x1a\n", encoded(gradient((10, 10)), "jpg")[:300]):
        with pytest.raises(MirageError) as info:
            resize(from_bytes(data), 5, 5)
        assert info.value.reason in {"unsupported_image_format", "truncated_image", "decode_failed"}
