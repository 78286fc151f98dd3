"""mirage.image: crop, rotate, flip and auto_orient on stored pixels."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from PIL import Image as PILImage

from mirage import codec
from mirage.errors import InvalidDimensions, TooManyPixels
from mirage.formats import FORMATS
from mirage.image import Image, auto_orient, crop, flip, from_bytes, rotate, thumbnail, to_bytes
from tests.conftest import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    bands,
    displayed,
    encode,
    exif_bytes,
    gradient,
    is_close,
    open_bytes,
    quadrants,
)
from tests.imaging import encoded, marked, rgb_at, tag_of, upright

BLACK = (0, 0, 0)


YELLOW = (255, 255, 0)


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


# --- rotate ------------------------------------------------------------------------------------


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


# --- flip --------------------------------------------------------------------------------------


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


# --- crop / rotate / flip carry the orientation ------------------------------------------------


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


# --- rotate backgrounds on other modes (bugs) --------------------------------------------------


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
