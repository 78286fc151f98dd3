"""mirage.image: animations (frames, timing, loop, first frame only, frame budgets)."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image as PILImage

from mirage.errors import TooManyPixels
from mirage.image import crop, flip, from_bytes, info, resize, rotate, thumbnail, to_bytes
from tests.conftest import BLUE, GREEN, RED, is_close, open_bytes
from tests.imaging import animation, rgb_at


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


# --- animations --------------------------------------------------------------------------------


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


def test_frame_flood_is_refused_before_decoding(pixel_loads: list[str]) -> None:
    # 20,000 one-pixel frames: tiny as pixels, 82 MP as charged, over the default budget.
    data = gif_flood(20_000)
    image = from_bytes(data)
    with pytest.raises(TooManyPixels):
        thumbnail(image, 1, 1)
    with pytest.raises(TooManyPixels):
        resize(image, 1, 1)
    assert "decoder" not in pixel_loads  # refused before decoding a frame
    assert thumbnail(image, 1, 1, frames="first")[1].frames == 1
