"""The imaging API of mirage.image: info, thumbnail, resize, crop, rotate, flip,
auto_orient, to_bytes, formats, animations, the allowlist and threads.

(test_image.py covers the issue-2 surface: from_bytes and fill resize.)
"""

from __future__ import annotations

import io
import math
import struct
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps, JpegImagePlugin

from mirage import codec, geometry
from mirage.buffers import keep
from mirage.errors import InvalidDimensions, TooManyPixels, UnsupportedImageFormat
from mirage.formats import DEFAULT_ALLOWED, FORMATS, PILLOW_NAME
from mirage.image import (
    Image,
    Info,
    auto_orient,
    crop,
    flip,
    formats,
    from_bytes,
    info,
    resize,
    rotate,
    thumbnail,
    to_bytes,
)
from tests.conftest import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    bands,
    bench_bytes,
    displayed,
    encode,
    exif_bytes,
    gradient,
    is_close,
    mean_abs_diff,
    open_bytes,
    quadrants,
    requires_bench,
)

BLACK = (0, 0, 0)
YELLOW = (255, 255, 0)

# Lossy encoders get settings that make colour checks about geometry, not compression.
LOSSLESS: dict[str, dict[str, object]] = {"jpg": {"quality": 95}, "webp": {"lossless": True}}

# The reference path for pixel checks: every pixel decoded (no draft), turned upright,
# then one LANCZOS resample of the planned box. A thumbnail may differ from it only by
# DCT-scaled decoding and the box-filter pre-reduction. Threshold: the worst channel's
# mean absolute difference must stay below 3 (of 255); measured 0.0-0.7 on the bench
# photos, while the wrong crop box scores above 10 (test_reference_check_notices_a_wrong_crop).
REFERENCE_MAD = 3.0
# The default bilinear filter is compared with the same LANCZOS reference, so it is
# allowed the gap between the two filters as well (measured <= 4.6 on the bench photos).
FILTER_MAD = {"lanczos": REFERENCE_MAD, "bilinear": 7.0}


def encoded(im: PILImage.Image, fmt: str, **options: object) -> bytes:
    """``im`` as Mirage format ``fmt``, losslessly where the format allows."""
    return encode(im, PILLOW_NAME[fmt], **{**LOSSLESS.get(fmt, {}), **options})


def translucent(size: tuple[int, int]) -> PILImage.Image:
    """A gradient at half opacity (an opaque RGBA image may be written without alpha)."""
    im = gradient(size).convert("RGBA")
    im.putalpha(128)
    return im


def rgb_at(im: PILImage.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    return im.convert("RGB").getpixel(xy)  # type: ignore[return-value]


def rgb_pixels(im: PILImage.Image) -> list[tuple[int, ...]]:
    """Every pixel as an RGB tuple (getdata() is deprecated in recent Pillow)."""
    raw = im.convert("RGB").tobytes()
    return [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]


def colours_in(im: PILImage.Image, palette: dict[str, tuple[int, int, int]]) -> set[str]:
    """Which of the named colours occur (within 40) in at least 2% of the pixels."""
    counts = dict.fromkeys(palette, 0)
    for pixel in rgb_pixels(im):
        for name, colour in palette.items():
            if is_close(pixel, colour):
                counts[name] += 1
    total = im.width * im.height
    return {name for name, n in counts.items() if n >= 0.02 * total}


def reference(data: bytes, width: int, height: int, fit: str, gravity: object) -> PILImage.Image:
    """The slow, obviously right thumbnail (see REFERENCE_MAD)."""
    im = ImageOps.exif_transpose(open_bytes(data)).convert("RGB")
    p = geometry.plan(im.size, (width, height), fit, gravity=gravity)  # type: ignore[arg-type]
    return im.resize(p.size, PILImage.Resampling.LANCZOS, box=p.box)


def animation(
    fmt: str,
    colours: tuple[tuple[int, int, int], ...] = (RED, GREEN, BLUE),
    durations: tuple[int, ...] = (40, 80, 120),
    loop: int | None = 3,
    size: tuple[int, int] = (30, 20),
) -> bytes:
    """A Pillow-made animation with one solid colour per frame."""
    frames = [PILImage.new("RGB", size, c) for c in colours]
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:]}
    options["duration"] = list(durations)
    if loop is not None:
        options["loop"] = loop
    return encoded(frames[0], fmt, **options)


def frames_of(data: bytes) -> tuple[list[tuple[int, int, int]], list[int], object, int]:
    """(centre colour, duration) of every frame, the loop count and the frame count."""
    im = PILImage.open(io.BytesIO(data))
    count = getattr(im, "n_frames", 1)
    colours, durations = [], []
    for index in range(count):
        im.seek(index)
        im.load()
        colours.append(rgb_at(im, (im.width // 2, im.height // 2)))
        durations.append(round(float(im.info.get("duration", 0))))
    return colours, durations, im.info.get("loop"), count


def gif_flood(frames: int) -> bytes:
    """A GIF of ``frames`` 1x1 frames, written byte by byte (fast, and nothing merged)."""
    width, height = 1, 1
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0))
    out += b"\x00\x00\x00\xff\xff\xff"  # two-colour global palette
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for index in range(frames):
        out += b"\x21\xf9\x04\x00\x02\x00\x00\x00"  # 20 ms
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
        # LZW codes clear, colour, end. Colours alternate: Pillow's writer merges
        # identical neighbouring frames.
        out += b"\x02\x02\x4c\x01\x00" if index % 2 else b"\x02\x02\x44\x01\x00"
    return bytes(out + b"\x3b")


def marked(size: tuple[int, int] = (60, 40)) -> PILImage.Image:
    """Blue with a red block in the stored top-left and a green one top-right."""
    width, height = size
    im = PILImage.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, width // 3, height // 3))
    im.paste(GREEN, (width - width // 3, 0, width, height // 3))
    return im


def upright(im: PILImage.Image, orientation: int) -> PILImage.Image:
    """``im`` as a viewer shows it with this EXIF orientation (Pillow's own transposes)."""
    tagged = im.copy()
    tagged.getexif()[0x0112] = orientation
    return ImageOps.exif_transpose(tagged)


def tag_of(data: bytes) -> int | None:
    """The orientation tag in ``data``, read before any loading (TIFF drops it on load)."""
    return PILImage.open(io.BytesIO(data)).getexif().get(0x0112)


# --- info -------------------------------------------------------------------------------------


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


def _png_with_exif_after_idat(payload: bytes) -> bytes:
    """A PNG whose eXIf chunk follows the image data (legal; Pillow's header parse misses it)."""
    png = encode(gradient((30, 20)), "PNG")
    body = b"eXIf" + payload
    chunk = struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + chunk + png[iend:]


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


# --- thumbnail: geometry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fit", "target", "expected"),
    [
        ("fill", (100, 100), (100, 100)),
        ("contain", (100, 100), (100, 50)),
        ("cover", (100, 100), (200, 100)),
        ("exact", (100, 100), (100, 100)),
        ("fill", (30, 90), (30, 90)),
        ("contain", (30, 90), (30, 15)),
        ("cover", (30, 90), (180, 90)),
        ("exact", (500, 7), (500, 7)),
    ],
    ids=str,
)
def test_thumbnail_sizes(fit: str, target: tuple[int, int], expected: tuple[int, int]) -> None:
    data = encoded(gradient((400, 200)), "png")
    for source in (data, from_bytes(data)):
        out, image = thumbnail(source, *target, fit=fit)  # type: ignore[arg-type]
        assert open_bytes(out).size == expected
        assert (image.width, image.height, image.byte_size) == (*expected, len(out))
        assert (image.format, image.orientation, image.frames) == ("png", 1, 1)


PALETTE3 = {"red": RED, "green": GREEN, "blue": BLUE}


@pytest.mark.parametrize(
    ("gravity", "wide", "tall"),
    [
        # Fill crops a wide source left-right (x of the gravity) and a tall one
        # top-bottom (y); bands are red, green, blue from left / top.
        ("center", "green", "green"),
        ("north", "green", "red"),
        ("south", "green", "blue"),
        ("east", "blue", "green"),
        ("west", "red", "green"),
        ("north_east", "blue", "red"),
        ("north_west", "red", "red"),
        ("south_east", "blue", "blue"),
        ("south_west", "red", "blue"),
        ((0.0, 1.0), "red", "blue"),
        ((0.5, 0.0), "green", "red"),
    ],
    ids=str,
)
def test_fill_gravity_keeps_the_right_band(gravity: object, wide: str, tall: str) -> None:
    for vertical, expected in ((True, wide), (False, tall)):
        size = (300, 100) if vertical else (100, 300)
        data = encoded(bands(size, [RED, GREEN, BLUE], vertical=vertical), "png")
        out = open_bytes(thumbnail(data, 50, 50, gravity=gravity)[0])  # type: ignore[arg-type]
        assert out.size == (50, 50)
        assert colours_in(out, PALETTE3) == {expected}, (gravity, vertical)


@pytest.mark.parametrize(("x", "band"), [(0.0, 0), (1 / 3, 1), (2 / 3, 2), (1.0, 3)])
def test_fill_gravity_pairs_select_exact_crops(x: float, band: int) -> None:
    # 400x100 with four 100-wide bands into 100x100: left = 300 * x, exactly one band.
    colours = [RED, GREEN, BLUE, WHITE]
    data = encoded(bands((400, 100), colours, vertical=True), "png")
    out = open_bytes(thumbnail(data, 100, 100, gravity=(x, 0.5), filter="nearest")[0])
    assert set(rgb_pixels(out)) == {colours[band]}


@pytest.mark.parametrize("fit", ["contain", "cover", "exact"])
def test_uncropped_fits_keep_every_band(fit: str) -> None:
    data = encoded(bands((300, 100), [RED, GREEN, BLUE], vertical=True), "png")
    for gravity in ("west", "east"):
        out = open_bytes(thumbnail(data, 60, 60, fit=fit, gravity=gravity)[0])  # type: ignore[arg-type]
        assert colours_in(out, PALETTE3) == {"red", "green", "blue"}
        third = out.width // 3
        y = out.height // 2
        assert is_close(rgb_at(out, (third // 2, y)), RED, 2)
        assert is_close(rgb_at(out, (out.width - 1 - third // 2, y)), BLUE, 2)


def test_fill_crop_of_quadrants_is_exact_with_nearest() -> None:
    # 200x100 quadrants into 50x50 with gravity west: the left 100x100 only.
    data = encoded(quadrants((200, 100)), "png")
    out = open_bytes(thumbnail(data, 50, 50, gravity="west", filter="nearest")[0])
    expected = quadrants((200, 100)).crop((0, 0, 100, 100)).resize((50, 50), 0)
    assert out.convert("RGB").tobytes() == expected.tobytes()
    assert rgb_at(out, (10, 10)) == RED and rgb_at(out, (40, 40)) == BLUE


@pytest.mark.parametrize("fit", ["fill", "contain", "cover", "exact"])
@pytest.mark.parametrize("target", [(200, 200), (80, 300), (10, 10)], ids=str)
def test_upscale_false_never_enlarges(fit: str, target: tuple[int, int]) -> None:
    data = encoded(gradient((100, 60)), "png")
    out, image = thumbnail(data, *target, fit=fit, upscale=False)  # type: ignore[arg-type]
    size = open_bytes(out).size
    assert size == (image.width, image.height)
    assert size[0] <= 100 and size[1] <= 60
    assert size == geometry.plan((100, 60), target, fit, upscale=False).size  # type: ignore[arg-type]
    if fit in ("fill", "exact"):
        assert size[0] <= target[0] and size[1] <= target[1]


@pytest.mark.parametrize("name", ["nearest", "bilinear", "bicubic", "lanczos"])
def test_filters_resample_as_named(name: str) -> None:
    # Each filter gives exactly Pillow's resize with that filter when nothing else
    # (no draft, no reduction: a 2x shrink of a PNG) is involved.
    im = gradient((64, 48))
    out = open_bytes(thumbnail(encoded(im, "png"), 32, 24, filter=name)[0])  # type: ignore[arg-type]
    filters = {"nearest": 0, "bilinear": 2, "bicubic": 3, "lanczos": 1}
    expected = im.resize((32, 24), PILImage.Resampling(filters[name]))
    assert mean_abs_diff(out, expected) < 0.5


def test_quality_and_format_options() -> None:
    data = encoded(gradient((200, 150)), "png")
    small = thumbnail(data, 100, 75, format="jpg", quality=20)[0]
    large = thumbnail(data, 100, 75, format="jpg", quality=95)[0]
    assert open_bytes(small).format == open_bytes(large).format == "JPEG"
    assert len(small) < len(large)
    out, image = thumbnail(data, 100, 75, format="webp")
    assert (open_bytes(out).format, image.format) == ("WEBP", "webp")


def test_thumbnail_output_keep_matches_thumbnail() -> None:
    data = encoded(gradient((120, 80)), "jpg")
    encoded_out, image = thumbnail(data, 30, 30, output=keep)
    with encoded_out:
        assert encoded_out.to_bytes() == thumbnail(data, 30, 30)[0]
        assert image.byte_size == len(encoded_out)


def test_thumbnail_of_held_image_equals_thumbnail_of_its_bytes() -> None:
    out, held = thumbnail(encoded(gradient((160, 120)), "png"), 80, 60)
    assert thumbnail(held, 40, 30)[0] == thumbnail(out, 40, 30)[0]


# --- thumbnail: EXIF orientation ------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_thumbnail_turns_upright(orientation: int) -> None:
    # At the full upright size nothing is resampled, so the pixels must match exactly.
    data = encoded(marked((60, 40)), "png", exif=exif_bytes(orientation))
    target = (40, 60) if orientation >= 5 else (60, 40)
    out, image = thumbnail(data, *target)
    expected = upright(marked((60, 40)), orientation)
    got = open_bytes(out)
    assert got.size == target and (image.width, image.height) == target
    assert got.convert("RGB").tobytes() == expected.tobytes()
    assert image.orientation == 1 and tag_of(out) in (None, 1)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_swapped_orientations_shrink_first_and_turn_the_small_result(
    orientation: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stored 600x400, shown 400x600. A 100x150 thumbnail must resample the stored
    # pixels straight to 150x100 (the target box swapped) and turn only that.
    data = encoded(gradient((600, 400)), "jpg", exif=exif_bytes(orientation))
    resized: list[tuple[int, int]] = []
    turned: list[tuple[int, int]] = []
    original_resize, original_transpose = PILImage.Image.resize, PILImage.Image.transpose

    def spy_resize(self, size, *args, **kwargs):  # type: ignore[no-untyped-def]
        resized.append(tuple(size))
        return original_resize(self, size, *args, **kwargs)

    def spy_transpose(self, method):  # type: ignore[no-untyped-def]
        turned.append(self.size)
        return original_transpose(self, method)

    monkeypatch.setattr(PILImage.Image, "resize", spy_resize)
    monkeypatch.setattr(PILImage.Image, "transpose", spy_transpose)
    out, image = thumbnail(data, 100, 150)
    assert resized == [(150, 100)]
    assert turned == [(150, 100)]
    assert (image.width, image.height) == (100, 150)
    assert open_bytes(out).size == (100, 150)


def test_auto_orient_false_keeps_the_stored_geometry() -> None:
    data = encoded(marked((60, 40)), "png", exif=exif_bytes(6))
    out, image = thumbnail(data, 30, 20, auto_orient=False, filter="nearest")
    assert (image.width, image.height, image.orientation) == (30, 20, 6)
    assert open_bytes(out).size == (30, 20)
    assert tag_of(out) == 6  # still displayed upright by a viewer
    expected = upright(marked((60, 40)).resize((30, 20), PILImage.Resampling.NEAREST), 6)
    assert displayed(out).convert("RGB").tobytes() == expected.tobytes()
    # Without EXIF in the output format the pixels are turned instead.
    gif, _ = thumbnail(data, 30, 20, auto_orient=False, filter="nearest", format="gif")
    assert open_bytes(gif).size == (20, 30)
    assert open_bytes(gif).convert("RGB").tobytes() == expected.tobytes()


# --- thumbnail: JPEG draft ------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    # 2400x1600 with detail at every scale (noise over a gradient), like a photo.
    noise = PILImage.effect_noise((2400, 1600), 40).convert("RGB")
    photo = PILImage.blend(gradient((240, 160)).resize((2400, 1600)), noise, 0.3)
    return encode(photo, "JPEG", quality=90)


@pytest.fixture
def drafts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[int, int]]]:
    """Records each JPEG draft request and the size every decode_frames call sees."""
    seen: dict[str, list[tuple[int, int]]] = {"requested": [], "decoded": []}
    original_draft = JpegImagePlugin.JpegImageFile.draft
    original_decode = codec.decode_frames

    def spy_draft(self, mode, size):  # type: ignore[no-untyped-def]
        seen["requested"].append(tuple(size))
        return original_draft(self, mode, size)

    def spy_decode(im, count):  # type: ignore[no-untyped-def]
        seen["decoded"].append(im.size)
        return original_decode(im, count)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy_draft)
    monkeypatch.setattr(codec, "decode_frames", spy_decode)
    return seen


@pytest.mark.parametrize(
    ("target", "decoded"),
    [((100, 100), (300, 200)), ((150, 150), (600, 400)), ((300, 300), (1200, 800))],
    ids=str,
)
def test_large_jpeg_is_drafted(
    big_jpeg: bytes,
    drafts: dict[str, list[tuple[int, int]]],
    target: tuple[int, int],
    decoded: tuple[int, int],
) -> None:
    out, image = thumbnail(big_jpeg, *target)
    assert drafts["requested"] and drafts["decoded"] == [decoded]
    assert open_bytes(out).size == target == (image.width, image.height)


@pytest.mark.parametrize(
    ("target", "fit"), [((1200, 800), "exact"), ((601, 400), "fill"), ((2400, 1600), "contain")]
)
def test_no_draft_when_the_output_needs_full_resolution(
    big_jpeg: bytes,
    drafts: dict[str, list[tuple[int, int]]],
    target: tuple[int, int],
    fit: str,
) -> None:
    out, _ = thumbnail(big_jpeg, *target, fit=fit, format="bmp")  # type: ignore[arg-type]
    assert drafts["decoded"] == [(2400, 1600)]
    assert open_bytes(out).size == target


def test_no_draft_for_held_pixels_or_other_formats(
    drafts: dict[str, list[tuple[int, int]]],
) -> None:
    _, held = thumbnail(encoded(gradient((800, 600)), "jpg"), 400, 300)
    drafts["requested"].clear()
    thumbnail(held, 50, 50)
    thumbnail(encoded(gradient((800, 600)), "png"), 50, 50)
    assert drafts["requested"] == []


def test_drafted_thumbnail_matches_the_reference(big_jpeg: bytes) -> None:
    # Decoded at 1/8 scale, then resampled: still the reference picture (REFERENCE_MAD).
    for target, fit, gravity in (((100, 100), "fill", "east"), ((200, 150), "contain", "center")):
        out, _ = thumbnail(
            big_jpeg, *target, fit=fit, gravity=gravity, filter="lanczos", format="png"
        )  # type: ignore[arg-type]
        ref = reference(big_jpeg, *target, fit, gravity)
        assert mean_abs_diff(open_bytes(out), ref) < REFERENCE_MAD


# --- thumbnail: pixels against the reference on real photographs -------------------------------


@requires_bench
@pytest.mark.parametrize(
    ("target", "fit", "gravity"),
    [
        ((64, 64), "fill", "center"),  # drafted at 1/2
        ((100, 100), "fill", "west"),
        ((200, 200), "fill", "east"),
        ((100, 300), "fill", (0.2, 0.5)),
        ((300, 300), "contain", "center"),
        ((150, 150), "cover", "center"),
        ((320, 100), "exact", "center"),
        ((32, 32), "fill", "north_east"),
    ],
    ids=str,
)
@pytest.mark.parametrize("filter_", ["lanczos", "bilinear"])
def test_rocket_matches_the_reference(
    target: tuple[int, int], fit: str, gravity: object, filter_: str
) -> None:
    data = bench_bytes("real_rocket_640x427.jpg")
    out, image = thumbnail(data, *target, fit=fit, gravity=gravity, filter=filter_, format="png")  # type: ignore[arg-type]
    ref = reference(data, *target, fit, gravity)
    assert (image.width, image.height) == ref.size
    assert mean_abs_diff(open_bytes(out), ref) < FILTER_MAD[filter_]


@requires_bench
def test_reference_check_notices_a_wrong_crop() -> None:
    # The threshold has teeth: the west crop compared with the east reference fails.
    data = bench_bytes("real_rocket_640x427.jpg")
    out, _ = thumbnail(data, 100, 100, gravity="west", filter="lanczos", format="png")
    assert mean_abs_diff(open_bytes(out), reference(data, 100, 100, "fill", "east")) > 10


@requires_bench
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_oriented_photo_matches_the_reference(orientation: int) -> None:
    # The rocket re-saved with an orientation tag: the fast path (draft, stored box,
    # turn at the end) against decode + exif_transpose + LANCZOS.
    rocket = open_bytes(bench_bytes("real_rocket_640x427.jpg"))
    data = encode(rocket, "JPEG", quality=95, exif=exif_bytes(orientation))
    for target, gravity in (((100, 100), "north"), ((60, 150), "south_east")):
        out, _ = thumbnail(data, *target, gravity=gravity, filter="lanczos", format="png")
        ref = reference(data, *target, "fill", gravity)
        assert mean_abs_diff(open_bytes(out), ref) < REFERENCE_MAD


@requires_bench
def test_twelve_megapixel_photo(drafts: dict[str, list[tuple[int, int]]]) -> None:
    data = bench_bytes("photo_12mp.jpg")
    out, image = thumbnail(data, 300, 300, filter="lanczos", format="png")
    assert drafts["decoded"] == [(1000, 750)]  # 1/4 scale: 750 >= 2 x 300, 1/8 would not be
    assert (image.width, image.height) == (300, 300)
    assert mean_abs_diff(open_bytes(out), reference(data, 300, 300, "fill", "center")) < (
        REFERENCE_MAD
    )


# --- resize ---------------------------------------------------------------------------------


def test_resize_is_fill_and_takes_thumbnail_options() -> None:
    data = encoded(bands((300, 100), [RED, GREEN, BLUE], vertical=True), "png")
    image = from_bytes(data)
    out, result = resize(image, 50, 50)
    assert open_bytes(out).size == (50, 50)
    assert colours_in(open_bytes(out), PALETTE3) == {"green"}
    out, _ = resize(image, 50, 50, gravity="east")
    assert colours_in(open_bytes(out), PALETTE3) == {"blue"}
    out, result = resize(image, 60, 60, fit="contain", format="gif")
    assert (open_bytes(out).format, open_bytes(out).size) == ("GIF", (60, 20))
    assert (result.format, result.width, result.height) == ("gif", 60, 20)
    assert (
        resize(image, 50, 50, filter="nearest")[0] == thumbnail(image, 50, 50, filter="nearest")[0]
    )


def test_resize_needs_an_image() -> None:
    with pytest.raises(TypeError):
        resize(encoded(gradient((10, 10)), "png"), 5, 5)  # type: ignore[arg-type]


# --- crop --------------------------------------------------------------------------------------


def test_crop_returns_unencoded_pixels() -> None:
    src = gradient((60, 40))
    image = from_bytes(encoded(src, "png"))
    part = crop(image, 10, 5, 30, 20)
    assert isinstance(part, Image)
    assert (part.width, part.height, part.byte_size, part.format) == (30, 20, None, "png")
    assert open_bytes(to_bytes(part)).tobytes() == src.crop((10, 5, 40, 25)).tobytes()


def test_crop_of_a_held_image_and_again() -> None:
    src = quadrants((80, 60))
    _, held = thumbnail(encoded(src, "png"), 80, 60)  # holds decoded pixels
    part = crop(held, 40, 0, 40, 30)
    assert rgb_at(open_bytes(to_bytes(part)), (20, 15)) == GREEN
    smaller = crop(part, 0, 0, 1, 1)
    assert (smaller.width, smaller.height) == (1, 1)
    assert rgb_at(open_bytes(to_bytes(smaller)), (0, 0)) == GREEN


@pytest.mark.parametrize(
    "box",
    [(0, 0, 61, 40), (0, 0, 60, 41), (1, 0, 60, 40), (0, 40, 1, 1), (60, 0, 1, 1)],
    ids=str,
)
def test_crop_out_of_bounds(box: tuple[int, int, int, int]) -> None:
    image = from_bytes(encoded(gradient((60, 40)), "png"))
    with pytest.raises(InvalidDimensions):
        crop(image, *box)


@pytest.mark.parametrize(
    "box", [(-1, 0, 10, 10), (0, -1, 10, 10), (0, 0, -5, 10), (0, 0, 10, 0)], ids=str
)
def test_crop_negative_or_empty(box: tuple[int, int, int, int]) -> None:
    image = from_bytes(encoded(gradient((60, 40)), "png"))
    with pytest.raises(InvalidDimensions):
        crop(image, *box)


def test_crop_whole_image_and_budget() -> None:
    image = from_bytes(encoded(gradient((60, 40)), "png"))
    assert (crop(image, 0, 0, 60, 40).width, crop(image, 0, 0, 60, 40).height) == (60, 40)
    with pytest.raises(TooManyPixels):
        crop(image, 0, 0, 60, 40, max_pixels=2399)
    with pytest.raises(TypeError):
        crop(image, 1.5, 0, 10, 10)  # type: ignore[arg-type]


# --- rotate ----------------------------------------------------------------------------------


def test_rotate_90_is_clockwise() -> None:
    # Red on the left: a clockwise quarter turn puts it on top.
    src = bands((30, 20), [RED, GREEN, BLUE], vertical=True)
    out = open_bytes(to_bytes(rotate(from_bytes(encoded(src, "png")), 90)))
    assert out.size == (20, 30)
    assert rgb_at(out, (10, 2)) == RED and rgb_at(out, (10, 27)) == BLUE
    assert out.tobytes() == src.transpose(PILImage.Transpose.ROTATE_270).tobytes()


@pytest.mark.parametrize(
    ("degrees", "method"),
    [
        (180, PILImage.Transpose.ROTATE_180),
        (270, PILImage.Transpose.ROTATE_90),
        (-90, PILImage.Transpose.ROTATE_90),
        (450, PILImage.Transpose.ROTATE_270),
        (90.0, PILImage.Transpose.ROTATE_270),
    ],
    ids=str,
)
def test_quarter_turns_are_exact(degrees: float, method: PILImage.Transpose) -> None:
    src = gradient((31, 17))
    out = open_bytes(to_bytes(rotate(from_bytes(encoded(src, "png")), degrees)))
    assert out.tobytes() == src.transpose(method).tobytes()


def test_four_quarter_turns_are_the_original() -> None:
    src = gradient((31, 17))
    image = from_bytes(encoded(src, "png"))
    for _ in range(4):
        image = rotate(image, 90)
    assert (image.width, image.height) == (31, 17)
    assert open_bytes(to_bytes(image)).tobytes() == src.tobytes()
    assert open_bytes(to_bytes(rotate(from_bytes(encoded(src, "png")), 360))).tobytes() == (
        src.tobytes()
    )


@pytest.mark.parametrize(("width", "height"), [(40, 40), (60, 20)])
def test_free_angle_expands_the_canvas(width: int, height: int) -> None:
    image = from_bytes(encoded(PILImage.new("RGB", (width, height), GREEN), "png"))
    turned = rotate(image, 45)
    side = (width + height) * math.cos(math.radians(45))
    # Pillow rounds the expanded canvas outwards to whole pixels.
    assert abs(turned.width - side) <= 2 and abs(turned.height - side) <= 2
    out = open_bytes(to_bytes(turned))
    assert rgb_at(out, (out.width // 2, out.height // 2)) == GREEN
    assert rgb_at(out, (0, 0)) == BLACK  # default background for no alpha
    at30 = rotate(image, 30)
    cos, sin = math.cos(math.radians(30)), math.sin(math.radians(30))
    assert abs(at30.width - (width * cos + height * sin)) <= 2
    assert abs(at30.height - (width * sin + height * cos)) <= 2


def test_free_angle_is_clockwise() -> None:
    # A red marker at the top-left corner moves towards the top-right under a clockwise
    # turn (it would go down the left edge counter-clockwise).
    src = PILImage.new("RGB", (60, 60), WHITE)
    src.paste(RED, (0, 0, 12, 12))
    out = open_bytes(to_bytes(rotate(from_bytes(encoded(src, "png")), 30)))
    reds = [
        (x, y)
        for y in range(out.height)
        for x in range(out.width)
        if is_close(rgb_at(out, (x, y)), RED, 30)
    ]
    mean_x = sum(x for x, _ in reds) / len(reds)
    mean_y = sum(y for _, y in reds) / len(reds)
    assert mean_y < out.height / 3 and mean_x < out.width / 2 and mean_y < mean_x


@pytest.mark.parametrize(
    ("mode", "background", "corner", "out_mode"),
    [
        ("RGB", None, (0, 0, 0), "RGB"),
        ("RGBA", None, (0, 0, 0, 0), "RGBA"),  # transparent by default with alpha
        ("RGB", (255, 0, 0), (255, 0, 0), "RGB"),
        ("RGB", (0, 0, 255, 0), (0, 0, 255, 0), "RGBA"),  # an RGBA background adds alpha
        ("RGBA", (255, 0, 0, 255), (255, 0, 0, 255), "RGBA"),
        ("RGBA", (0, 255, 0, 128), (0, 255, 0, 128), "RGBA"),
    ],
    ids=str,
)
def test_free_angle_background(
    mode: str, background: tuple[int, ...] | None, corner: tuple[int, ...], out_mode: str
) -> None:
    src = PILImage.new(mode, (40, 30), (255, 255, 0, 255) if mode == "RGBA" else YELLOW)
    turned = rotate(from_bytes(encoded(src, "png")), 45, background=background)
    out = open_bytes(to_bytes(turned, format="png"))
    assert out.mode == out_mode
    assert out.getpixel((0, 0)) == corner
    centre = out.getpixel((out.width // 2, out.height // 2))
    assert centre[:3] == YELLOW and (len(centre) == 3 or centre[3] == 255)


def test_rotate_budget() -> None:
    image = from_bytes(encoded(gradient((100, 100)), "png"))
    rotate(image, 90, max_pixels=10_000)
    with pytest.raises(TooManyPixels):
        rotate(image, 45, max_pixels=10_000)  # the expanded canvas is larger


# --- flip ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "method"),
    [
        ("horizontal", PILImage.Transpose.FLIP_LEFT_RIGHT),
        ("vertical", PILImage.Transpose.FLIP_TOP_BOTTOM),
    ],
)
def test_flip_is_pixel_exact(direction: str, method: PILImage.Transpose) -> None:
    src = gradient((31, 17)).convert("RGBA")
    image = from_bytes(encoded(src, "png"))
    flipped = flip(image, direction)  # type: ignore[arg-type]
    assert (flipped.width, flipped.height, flipped.byte_size) == (31, 17, None)
    assert open_bytes(to_bytes(flipped)).tobytes() == src.transpose(method).tobytes()
    twice = flip(flipped, direction)  # type: ignore[arg-type]
    assert open_bytes(to_bytes(twice)).tobytes() == src.tobytes()


# --- auto_orient -------------------------------------------------------------------------------


def test_auto_orient_upright_is_the_same_object() -> None:
    image = from_bytes(encoded(gradient((30, 20)), "png"))
    assert auto_orient(image) is image


@pytest.mark.parametrize("orientation", range(2, 9))
def test_auto_orient_applies_the_tag(orientation: int) -> None:
    src = marked((60, 40))
    image = from_bytes(encoded(src, "png", exif=exif_bytes(orientation)))
    turned = auto_orient(image)
    assert turned.orientation == 1
    expected = (40, 60) if orientation >= 5 else (60, 40)
    assert (turned.width, turned.height) == expected
    out = to_bytes(turned)
    assert tag_of(out) in (None, 1)
    assert open_bytes(out).convert("RGB").tobytes() == upright(src, orientation).tobytes()
    assert auto_orient(turned) is turned


# --- crop / rotate / flip carry the orientation ---------------------------------------------

STORED_OPS: dict[
    str, tuple[Callable[[Image], Image], Callable[[PILImage.Image], PILImage.Image]]
] = {
    "crop": (
        lambda image: crop(image, 10, 0, 40, 30),
        lambda im: im.crop((10, 0, 50, 30)),
    ),
    "rotate": (
        lambda image: rotate(image, 90),
        lambda im: im.transpose(PILImage.Transpose.ROTATE_270),
    ),
    "flip": (
        lambda image: flip(image, "horizontal"),
        lambda im: im.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT),
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("op", STORED_OPS)
def test_stored_pixel_ops_still_display_upright(op: str, orientation: int, fmt: str) -> None:
    # The op works on the stored pixels and keeps the tag; a viewer of the encoded
    # result sees exactly the op's stored result turned by that tag.
    src = marked((60, 40))
    image = from_bytes(encoded(src, "png", exif=exif_bytes(orientation)))
    run, pillow_op = STORED_OPS[op]
    result = run(image)
    stored = pillow_op(src)
    assert result.orientation == orientation
    assert (result.width, result.height) == stored.size
    out = to_bytes(result, format=fmt, **({"lossless": True} if fmt == "webp" else {}))
    shown = displayed(out).convert("RGB")
    expected = upright(stored, orientation)
    if fmt in codec.EXIF_FORMATS:
        assert tag_of(out) == orientation  # the tag travels with the stored pixels
    else:
        assert tag_of(out) is None
        assert open_bytes(out).size == expected.size  # the pixels themselves are turned
    if fmt == "jpg":
        # Lossy, but deterministic: the same stored pixels through Pillow's encoder.
        expected = upright(open_bytes(encode(stored, "JPEG", quality=85)), orientation)
    assert shown.tobytes() == expected.convert("RGB").tobytes()


# --- to_bytes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_png() -> bytes:
    noise = PILImage.effect_noise((160, 120), 60).convert("RGB")
    return encode(PILImage.blend(gradient((160, 120)), noise, 0.4), "PNG")


def test_to_bytes_default_format_is_the_images(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    assert open_bytes(to_bytes(image)).format == "PNG"
    assert open_bytes(to_bytes(crop(image, 0, 0, 10, 10))).format == "PNG"


def test_progressive_jpeg(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    baseline = to_bytes(image, format="jpg")
    progressive = to_bytes(image, format="jpg", progressive=True)
    assert b"\xff\xc0" in baseline and b"\xff\xc2" not in baseline
    assert b"\xff\xc2" in progressive  # SOF2
    assert open_bytes(progressive).info.get("progressive") == 1


def test_optimize_and_quality(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    pixels = open_bytes(photo_png)
    # Exactly Pillow's output for the same pixels and settings.
    assert to_bytes(image, format="jpg", optimize=True) == encode(
        pixels, "JPEG", quality=85, optimize=True
    )
    assert to_bytes(image, format="jpg", quality=30) == encode(pixels, "JPEG", quality=30)
    assert len(to_bytes(image, format="jpg", quality=30)) < len(to_bytes(image, format="jpg"))
    assert len(to_bytes(image, format="png", optimize=True)) <= len(to_bytes(image, format="png"))


def test_webp_lossless_is_vp8l(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    lossless = to_bytes(image, format="webp", lossless=True)
    lossy = to_bytes(image, format="webp")
    assert lossless[12:16] == b"VP8L" and lossy[12:16] == b"VP8 "
    assert open_bytes(lossless).convert("RGB").tobytes() == open_bytes(photo_png).tobytes()


def test_png_compress_level(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    stored = to_bytes(image, compress_level=0)
    best = to_bytes(image, compress_level=9)
    assert len(stored) > 160 * 120 * 3  # level 0 stores the raw rows
    assert len(best) < len(stored) * 0.9
    assert open_bytes(stored).tobytes() == open_bytes(best).tobytes()


@pytest.fixture(scope="module")
def profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def camera_jpeg(profile: bytes) -> bytes:
    """A camera-like JPEG: orientation 6, Make/Model, ICC, XMP and a comment."""
    return encode(
        marked((60, 40)),
        "JPEG",
        quality=95,
        exif=exif_bytes(6, Make="Acme", Model="Cam 1"),
        icc_profile=profile,
        xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret</x:xmpmeta>",
        comment=b"taken at home",
    )


@pytest.mark.parametrize("fmt", codec.EXIF_FORMATS)
def test_strip_keeps_only_orientation_and_profile(
    camera_jpeg: bytes, profile: bytes, fmt: str
) -> None:
    out = to_bytes(from_bytes(camera_jpeg), format=fmt)
    reopened = PILImage.open(io.BytesIO(out))
    tags = dict(reopened.getexif())
    if fmt == "tiff":
        # A TIFF's own layout tags (size, strips, compression) live in the same IFD.
        plain = PILImage.open(
            io.BytesIO(to_bytes(auto_orient(from_bytes(camera_jpeg)), format=fmt))
        )
        tags = {k: v for k, v in tags.items() if k not in plain.getexif() or k == 0x0112}
    assert tags == {0x0112: 6}
    assert reopened.info.get("icc_profile") == profile
    assert "xmp" not in reopened.info and "comment" not in reopened.info
    assert b"secret" not in out and b"Acme" not in out


@pytest.mark.parametrize("fmt", codec.EXIF_FORMATS)
def test_strip_false_keeps_the_source_exif(camera_jpeg: bytes, profile: bytes, fmt: str) -> None:
    image = from_bytes(camera_jpeg)
    exif = PILImage.open(io.BytesIO(to_bytes(image, format=fmt, strip=False))).getexif()
    assert (exif.get(0x010F), exif.get(0x0110), exif.get(0x0112)) == ("Acme", "Cam 1", 6)
    # Once the pixels are upright the kept EXIF must not say otherwise.
    for result in (auto_orient(image), thumbnail(image, 20, 30)[1]):
        out = to_bytes(result, format=fmt, strip=False)
        exif = PILImage.open(io.BytesIO(out)).getexif()
        assert exif.get(0x010F) == "Acme" and exif.get(0x0112, 1) == 1
        assert displayed(out).size == (result.width, result.height)


def test_thumbnail_strip_option(camera_jpeg: bytes) -> None:
    stripped = PILImage.open(io.BytesIO(thumbnail(camera_jpeg, 20, 30)[0])).getexif()
    kept = PILImage.open(io.BytesIO(thumbnail(camera_jpeg, 20, 30, strip=False)[0])).getexif()
    assert 0x010F not in stripped and stripped.get(0x0112, 1) == 1
    assert kept.get(0x010F) == "Acme" and kept.get(0x0112, 1) == 1


@pytest.mark.parametrize("source", ["tiff", "png-exif-after-idat"])
def test_strip_false_keeps_exif_found_outside_the_header(source: str) -> None:
    if source == "tiff":
        data = encode(gradient((30, 20)), "TIFF", exif=exif_bytes(6, Make="Acme"))
    else:
        data = _png_with_exif_after_idat(exif_bytes(6, Make="Acme"))
    image = from_bytes(data)
    assert image.orientation == 6  # the orientation itself is found
    exif = PILImage.open(io.BytesIO(to_bytes(image, format="jpg", strip=False))).getexif()
    assert (exif.get(0x0112), exif.get(0x010F)) == (6, "Acme")


PALETTE4 = {"red": RED, "green": GREEN, "blue": BLUE, "white": WHITE}


@pytest.mark.parametrize("target", FORMATS)
@pytest.mark.parametrize("source", FORMATS)
def test_every_format_round_trips(source: str, target: str) -> None:
    src = quadrants((40, 30))
    out = to_bytes(from_bytes(encoded(src, source)), format=target)
    got = open_bytes(out)
    assert (got.format, got.size) == (PILLOW_NAME[target], (40, 30))
    assert from_bytes(out).format == target
    for xy, colour in (((10, 7), RED), ((30, 7), GREEN), ((10, 22), BLUE), ((30, 22), WHITE)):
        assert is_close(rgb_at(got, xy), colour, 12), (xy, rgb_at(got, xy))
    if source in ("png", "gif", "bmp", "tiff") and target in ("png", "gif", "bmp", "tiff"):
        assert got.convert("RGB").tobytes() == src.tobytes()


def test_rgba_to_jpeg_drops_alpha() -> None:
    src = PILImage.new("RGBA", (20, 20), (200, 30, 30, 255))
    src.paste((0, 0, 0, 0), (0, 0, 10, 20))
    got = open_bytes(to_bytes(from_bytes(encoded(src, "png")), format="jpg"))
    assert got.mode == "RGB"
    assert is_close(rgb_at(got, (15, 10)), (200, 30, 30), 10)


def test_sixteen_bit_png_to_png_is_untouched() -> None:
    src = PILImage.new("I;16", (64, 64))
    src.putdata([(x + y) * 500 for y in range(64) for x in range(64)])
    got = open_bytes(to_bytes(from_bytes(encoded(src, "png"))))
    assert got.mode == "I;16"
    assert got.tobytes() == src.tobytes()


@pytest.mark.parametrize("fmt", ["jpg", "webp", "gif", "bmp"])
def test_sixteen_bit_png_to_eight_bit_formats_is_scaled(fmt: str) -> None:
    src = PILImage.new("I;16", (64, 64))
    src.putdata([(x + y) * 500 for y in range(64) for x in range(64)])  # 0..63000
    got = open_bytes(to_bytes(from_bytes(encoded(src, "png")), format=fmt)).convert("L")
    mean = sum(got.tobytes()) / (64 * 64)
    # Scaled to 8 bits the mean is about 63 * 500 / 257 = 123; clipped it is 255.
    assert 100 < mean < 145


@pytest.mark.parametrize("fmt", ["png", "tiff", "webp", "jpg"])
def test_lab_does_not_become_transparent(fmt: str) -> None:
    lab = encoded(PILImage.new("RGB", (40, 30), (200, 30, 30)).convert("LAB"), "tiff")
    got = open_bytes(to_bytes(from_bytes(lab), format=fmt))
    assert "A" not in got.getbands() or got.getchannel("A").getextrema() == (255, 255)
    assert is_close(rgb_at(got, (20, 15)), (200, 30, 30), 12)


def test_to_bytes_budget_and_unknown_format() -> None:
    image = from_bytes(encoded(gradient((100, 100)), "png"))
    with pytest.raises(TooManyPixels):
        to_bytes(image, max_pixels=9_999)
    with pytest.raises(ValueError):
        to_bytes(image, format="heic")


# --- animations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["gif", "webp", "png"])
@pytest.mark.parametrize("source", ["gif", "webp", "png"])
def test_animation_keeps_frames_timing_and_loop(source: str, target: str) -> None:
    data = animation(source)
    out, image = thumbnail(data, 15, 10, format=target)
    colours, durations, loop, count = frames_of(out)
    assert count == 3 and image.frames == 3 and info(out).frames == 3
    assert durations == [40, 80, 120]
    assert loop == 3
    assert all(is_close(c, e, 4) for c, e in zip(colours, (RED, GREEN, BLUE), strict=True))
    assert open_bytes(out).size == (15, 10) == (image.width, image.height)


def test_resize_of_an_animation_and_of_its_result() -> None:
    _, first = resize(from_bytes(animation("gif")), 20, 10)
    out, second = resize(first, 10, 10, format="webp")
    _, durations, loop, count = frames_of(out)
    assert (count, durations, loop, second.frames) == (3, [40, 80, 120], 3, 3)


@pytest.mark.parametrize("op", ["crop", "rotate", "flip"])
def test_stored_pixel_ops_keep_every_frame(op: str) -> None:
    image = from_bytes(animation("gif"))
    result = {
        "crop": lambda: crop(image, 0, 0, 10, 10),
        "rotate": lambda: rotate(image, 90),
        "flip": lambda: flip(image, "vertical"),
    }[op]()
    assert result.frames == 3
    colours, durations, loop, count = frames_of(to_bytes(result))
    assert (count, durations, loop) == (3, [40, 80, 120], 3)
    assert colours == [RED, GREEN, BLUE]


@pytest.mark.parametrize("source", ["gif", "webp", "png"])
def test_first_frame_only(source: str) -> None:
    out, image = thumbnail(animation(source), 15, 10, frames="first")
    colours, _, _, count = frames_of(out)
    assert count == 1 and image.frames == 1 and info(out).frames == 1
    assert is_close(colours[0], RED, 4)


def test_animation_to_jpeg_keeps_the_first_frame() -> None:
    out, _ = thumbnail(animation("gif"), 15, 10, format="jpg")
    got = open_bytes(out)
    assert got.format == "JPEG" and getattr(got, "n_frames", 1) == 1
    assert is_close(rgb_at(got, (7, 5)), RED, 10)
    assert is_close(
        rgb_at(open_bytes(to_bytes(from_bytes(animation("webp")), format="jpg")), (5, 5)), RED, 10
    )


def test_animation_to_jpeg_describes_one_frame() -> None:
    out, image = thumbnail(animation("gif"), 15, 10, format="jpg")
    assert image.frames == from_bytes(out).frames == 1


@pytest.mark.parametrize("target", ["webp", "png"])
def test_play_once_gif_stays_play_once(target: str) -> None:
    data = animation("gif", loop=None)
    assert PILImage.open(io.BytesIO(data)).info.get("loop") is None
    _, _, loop, _ = frames_of(thumbnail(data, 15, 10, format=target)[0])
    assert loop != 0


def test_budget_counts_every_frame() -> None:
    data = animation("gif", size=(100, 100))  # 3 x 10,000 pixels
    image = from_bytes(data, max_pixels=10_000)
    for op in (
        lambda: thumbnail(image, 100, 100, max_pixels=29_999),
        lambda: crop(image, 0, 0, 10, 10, max_pixels=29_999),
        lambda: rotate(image, 90, max_pixels=29_999),
        lambda: flip(image, "horizontal", max_pixels=29_999),
        lambda: to_bytes(image, max_pixels=29_999),
    ):
        with pytest.raises(TooManyPixels):
            op()
    assert thumbnail(image, 100, 100, max_pixels=30_000)[1].frames == 3
    assert thumbnail(image, 100, 100, frames="first", max_pixels=10_000)[1].frames == 1


def test_each_frame_costs_at_least_64x64() -> None:
    data = gif_flood(50)  # 50 pixels in all, charged 50 x 4096
    image = from_bytes(data)
    assert image.frames == 50
    with pytest.raises(TooManyPixels):
        thumbnail(image, 1, 1, max_pixels=50 * 4096 - 1)
    out, result = thumbnail(image, 1, 1, max_pixels=50 * 4096)
    assert result.frames == 50 and info(out).frames == 50


def test_frame_flood_is_refused_quickly() -> None:
    # 20,000 one-pixel frames: tiny as pixels, 82 MP as charged, over the default budget.
    data = gif_flood(20_000)
    started = time.perf_counter()
    image = from_bytes(data)
    with pytest.raises(TooManyPixels):
        thumbnail(image, 1, 1)
    with pytest.raises(TooManyPixels):
        resize(image, 1, 1)
    assert time.perf_counter() - started < 2.0  # refused before decoding a frame
    assert thumbnail(image, 1, 1, frames="first")[1].frames == 1


# --- allowlist ----------------------------------------------------------------------------------


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


# --- formats ------------------------------------------------------------------------------------


def test_formats_lists_read_write_allowed() -> None:
    got = formats()
    assert set(got) == {"read", "write", "allowed"}
    assert got["read"] == codec.readable() and got["write"] == codec.writable()
    assert got["allowed"] == [f for f in DEFAULT_ALLOWED if f in got["read"]]
    assert set(got["allowed"]) <= set(got["read"]) <= set(FORMATS)
    # Every format said to be written really is written, and read back.
    for fmt in got["write"]:
        out = to_bytes(from_bytes(encoded(gradient((8, 8)), "png")), format=fmt)
        if fmt in got["read"]:
            assert from_bytes(out).format == fmt


# --- threads ------------------------------------------------------------------------------------


def test_shared_images_from_eight_threads() -> None:
    # One lazily decoded JPEG (each thread drafts and decodes on its own) and one held,
    # decoded image (pixels shared read-only) must give the same bytes in every thread.
    lazy = from_bytes(encoded(gradient((800, 600)), "jpg"))
    _, held = thumbnail(encoded(gradient((400, 300)), "png"), 400, 300)
    expected = (thumbnail(lazy, 100, 90)[0], thumbnail(held, 77, 51, fit="contain")[0])
    barrier = threading.Barrier(8)

    def work(_: int) -> tuple[bytes, bytes]:
        barrier.wait()  # start together so the work overlaps
        results = []
        for _ in range(3):
            results.append((thumbnail(lazy, 100, 90)[0], thumbnail(held, 77, 51, fit="contain")[0]))
        assert len(set(results)) == 1
        return results[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(work, range(8))) == {expected}


# --- rotate backgrounds on other modes (bugs) -----------------------------------------------


def test_cmyk_free_rotation_default_background_is_black() -> None:
    cmyk = encode(PILImage.new("RGB", (40, 40), (200, 50, 30)).convert("CMYK"), "JPEG")
    got = open_bytes(to_bytes(rotate(from_bytes(cmyk), 45), format="png"))
    assert is_close(rgb_at(got, (0, 0)), BLACK, 10)


@pytest.mark.parametrize(("mode", "fmt"), [("L", "png"), ("LA", "png"), ("CMYK", "jpg")], ids=str)
def test_rgb_background_on_other_modes(mode: str, fmt: str) -> None:
    src = encoded(PILImage.new("RGB", (40, 40), GREEN).convert(mode), fmt)
    got = open_bytes(to_bytes(rotate(from_bytes(src), 45, background=(255, 0, 0)), format="png"))
    corner = got.convert("RGBA").getpixel((0, 0))
    # Red, or in grey modes red's luminance (76): in any case opaque, not white.
    assert corner[3] == 255
    assert is_close(corner[:3], RED, 10) or is_close(corner[:3], (76, 76, 76), 10)


# --- borrowed buffers ---------------------------------------------------------------------------


def test_results_do_not_borrow_the_callers_buffer() -> None:
    # The NIF lends an Erlang binary as a memoryview for one call only. Whatever
    # outlives the call (a held Image, a thumbnail's Image) must not point into it.
    data = encoded(quadrants((80, 60)), "png")
    backing = bytearray(data)
    view = memoryview(backing)
    image = from_bytes(view)
    described = info(view)
    out, thumb = thumbnail(view, 40, 30)
    view.release()
    backing[:] = bytes(len(backing))  # the lender reuses its memory
    assert (described.width, described.height) == (80, 60)
    assert to_bytes(image) == to_bytes(from_bytes(data))
    assert to_bytes(thumb) == to_bytes(from_bytes(out))
    assert rgb_at(open_bytes(to_bytes(thumb)), (30, 5)) == GREEN


@pytest.mark.parametrize("fmt", ["jpg", "gif", "webp"])
def test_memoryview_sources_give_the_same_thumbnails(fmt: str) -> None:
    data = animation(fmt) if fmt != "jpg" else encoded(gradient((300, 200)), fmt)
    assert thumbnail(memoryview(data), 20, 20)[0] == thumbnail(data, 20, 20)[0]
