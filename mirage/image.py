"""Every image operation, on Pillow, with no knowledge of cffi, ports or nodes.

An :class:`Image` is immutable. One made by :func:`from_bytes` holds the encoded bytes
and what the header says; pixels are decoded only by the first operation that needs
them, and each operation decodes on its own (so one ``Image`` may be used from many
threads at once, and a JPEG can be decoded at a reduced DCT scale for a small output).
An ``Image`` returned by an operation holds its decoded pixels.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

from PIL import Image as PILImage
from PIL import ImageFile

from mirage.errors import (
    InvalidDimensions,
    TooManyPixels,
    TruncatedImage,
    UnsupportedImageFormat,
    classify,
    translate,
)
from mirage.formats import DEFAULT_ALLOWED, FROM_PILLOW, PILLOW_NAME

#: Largest image (width x height) decoded or produced unless the caller says otherwise.
#: Well below Pillow's own 89 MP warning, above any phone camera's 48 MP.
DEFAULT_MAX_PIXELS = 50_000_000

# Bytes Pillow's plugins look at to recognise a format.
_PREFIX = 16

# Leading bytes too short for Pillow to recognise, but unmistakably a cut-off image.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")

# EXIF orientation -> the transpose that makes the image upright.
_UPRIGHT = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}

# Modes each encoder writes as they are; anything else is converted first.
_WRITABLE = {
    "jpg": {"L", "RGB", "CMYK"},
    "png": {"1", "L", "LA", "I;16", "P", "RGB", "RGBA"},
    "gif": {"1", "L", "P", "RGB", "RGBA"},
    "webp": {"RGB", "RGBA"},
    "bmp": {"1", "L", "P", "RGB", "RGBA"},
    "tiff": {"1", "L", "LA", "I", "I;16", "F", "P", "RGB", "RGBA", "CMYK"},
}

_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "jpg": {"quality": 85},
    "webp": {"quality": 80},
}


@dataclass(frozen=True, eq=False)
class Image:
    """An image: what its header says, plus the bytes or pixels to work from."""

    format: str
    width: int
    height: int
    byte_size: int
    frames: int = 1
    orientation: int = 1
    _source: bytes | None = field(default=None, repr=False)
    _pixels: PILImage.Image | None = field(default=None, repr=False)


def from_bytes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read an image's header (format, size, orientation, frames) without its pixels.

    Raises :class:`~mirage.errors.MirageError` subclasses for bad data. A corrupt body
    is only noticed by the first operation that decodes pixels.
    """
    data = bytes(data)
    with translate("decode"):
        im = _open(data)
        width, height = im.size
        _check_size(width, height, max_pixels)
        frames = int(getattr(im, "n_frames", 1))
    return Image(
        format=FROM_PILLOW[im.format or ""],
        width=width,
        height=height,
        byte_size=len(data),
        frames=frames,
        orientation=_orientation(im),
        _source=data,
    )


def resize(
    image: Image, width: int, height: int, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[bytes, Image]:
    """Resize to exactly ``width`` x ``height``: scale to cover, crop the centre.

    The image is first turned upright by its EXIF orientation. Uses a triangle
    (bilinear) filter and encodes in the source format. Returns the new bytes and an
    :class:`Image` describing (and holding) the result.
    """
    _check_target(width, height, max_pixels)
    pixels = _pixels_for(image, width, height, max_pixels)
    with translate("decode"):
        out = _fill(pixels, width, height)
    data = encode(out, image.format)
    return data, Image(image.format, width, height, len(data), _pixels=out)


def encode(pixels: PILImage.Image, fmt: str) -> bytes:
    """Encode decoded pixels as ``fmt`` (a name from :data:`~mirage.formats.FORMATS`)."""
    with translate("encode"):
        if pixels.mode not in _WRITABLE[fmt]:
            pixels = pixels.convert(_fallback_mode(pixels, fmt))
        options = dict(_SAVE_OPTIONS.get(fmt, {}))
        if "icc_profile" in pixels.info:
            options["icc_profile"] = pixels.info["icc_profile"]
        buffer = io.BytesIO()
        pixels.save(buffer, format=PILLOW_NAME[fmt], **options)
        return buffer.getvalue()


def _open(data: bytes, allowed: tuple[str, ...] = DEFAULT_ALLOWED) -> ImageFile.ImageFile:
    # Pillow's Image.open tries every plugin and hides why each one refused; asking
    # the allowed plugins directly keeps the allowlist and tells truncation apart.
    prefix = data[:_PREFIX]
    for fmt in allowed:
        factory, accept = PILImage.OPEN[PILLOW_NAME[fmt]]
        verdict = accept(prefix) if accept else True
        if isinstance(verdict, str) or not verdict:
            continue
        fp = io.BytesIO(data)
        try:
            return factory(fp, "")
        except Exception as exc:  # mapped to a reason below
            if fp.tell() >= len(data):
                raise TruncatedImage(f"header ends early: {exc}") from exc
            raise classify(exc, "decode") from exc
    if data and any(sig.startswith(data) for sig in _SIGNATURES):
        raise TruncatedImage("input is only the start of an image signature")
    raise UnsupportedImageFormat("not an image in an allowed format")


def _orientation(im: PILImage.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not fail the whole image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise InvalidDimensions(f"image is {width}x{height}")
    if width * height > max_pixels:
        raise TooManyPixels(f"{width}x{height} exceeds the budget of {max_pixels} pixels")


def _check_target(width: int, height: int, max_pixels: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    _check_size(width, height, max_pixels)


def _swaps_axes(orientation: int) -> bool:
    return orientation >= 5


def _pixels_for(image: Image, width: int, height: int, max_pixels: int) -> PILImage.Image:
    """Decoded, upright pixels, at a reduced scale where the output allows it."""
    if image._pixels is not None:
        return image._pixels
    assert image._source is not None
    with translate("decode"):
        im = _open(image._source)
        _check_size(im.width, im.height, max_pixels)
        if im.format == "PNG":
            # Pillow checks no IDAT checksums while decoding; verify walks every chunk's
            # CRC (cheap next to inflating) so corrupt files fail instead of passing.
            im.verify()
            im = _open(image._source)
        elif im.format == "JPEG":
            # Decode at the largest DCT scale that still leaves 2x for the resample.
            w, h = (height, width) if _swaps_axes(image.orientation) else (width, height)
            scale = max(w / im.width, h / im.height)
            im.draft(im.mode, (math.ceil(im.width * scale * 2), math.ceil(im.height * scale * 2)))
        im.load()
        pixels: PILImage.Image = _resizable(im)
        if image.orientation in _UPRIGHT:
            pixels = pixels.transpose(_UPRIGHT[image.orientation])
        return pixels


def _resizable(im: PILImage.Image) -> PILImage.Image:
    # Pillow resizes palette and 1-bit images with nearest neighbour only.
    if im.mode in ("P", "PA"):
        has_alpha = im.mode == "PA" or "transparency" in im.info
        return im.convert("RGBA" if has_alpha else "RGB")
    if im.mode == "1":
        return im.convert("L")
    if im.mode.startswith("I;16"):
        return im.convert("I")
    return im


def _fill(pixels: PILImage.Image, width: int, height: int) -> PILImage.Image:
    """Scale to cover ``width`` x ``height`` and crop the centre, in one resample."""
    src_w, src_h = pixels.size
    scale = max(width / src_w, height / src_h)
    crop_w, crop_h = width / scale, height / scale
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    out = pixels.resize((width, height), PILImage.Resampling.BILINEAR, box=box)
    # resize copies the source's info (compression, EXIF, ...), which would steer the
    # encoder; only the colour profile belongs to the new pixels.
    out.info = {k: v for k, v in pixels.info.items() if k == "icc_profile"}
    return out


def _fallback_mode(pixels: PILImage.Image, fmt: str) -> str:
    if fmt == "png" and pixels.mode == "I":
        return "I;16"  # 16-bit sources are widened to I for resampling
    if fmt == "jpg" or "A" not in pixels.getbands():
        return "RGB"
    return "RGBA"
