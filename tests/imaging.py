"""Helpers shared by the tests of mirage.image (tests/test_header.py and friends)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image as PILImage
from PIL import ImageOps

from mirage.formats import PILLOW_NAME
from tests.conftest import BLUE, GREEN, RED, encode, gradient

# Lossy encoders get settings that make colour checks about geometry, not compression.
LOSSLESS: dict[str, dict[str, object]] = {"jpg": {"quality": 95}, "webp": {"lossless": True}}


def encoded(im: PILImage.Image, fmt: str, **options: object) -> bytes:
    """``im`` as Mirage format ``fmt``, losslessly where the format allows."""
    return encode(im, PILLOW_NAME[fmt], **{**LOSSLESS.get(fmt, {}), **options})


def rgb_at(im: PILImage.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    return im.convert("RGB").getpixel(xy)  # type: ignore[return-value]


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


def _png_with_exif_after_idat(payload: bytes) -> bytes:
    """A PNG whose eXIf chunk follows the image data (legal; Pillow's header parse misses it)."""
    png = encode(gradient((30, 20)), "PNG")
    body = b"eXIf" + payload
    chunk = struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + chunk + png[iend:]
