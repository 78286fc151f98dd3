"""Reading and writing image files with Pillow: the allowlist, decoding, encoding.

Where the bytes are read from and written to (views, memfd or ``BytesIO``) is
:mod:`mirage.buffers`' business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from PIL import Image as PILImage
from PIL import ImageFile, features

from mirage import buffers, deadline, evidence
from mirage.buffers import Data, Encoded
from mirage.errors import (
    DecodeFailed,
    InvalidDimensions,
    MirageError,
    TruncatedImage,
    UnsupportedFeature,
    UnsupportedImageFormat,
    classify,
    raised_by_mirage,
)
from mirage.formats import FORMATS, PILLOW_NAME

_log = logging.getLogger("mirage")

# Bytes Pillow's plugins look at to recognise a format.
_PREFIX = 16

# Modes with an alpha band ("LAB" has an "A" band that is a colour channel).
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

#: Formats whose frames are an animation (other multi-frame files: first frame only).
ANIMATED = ("gif", "webp", "png")

# Modes each encoder writes as they are; anything else is converted first.
_WRITABLE = {
    "jpg": {"L", "RGB", "CMYK"},
    "png": {"1", "L", "LA", "I;16", "P", "RGB", "RGBA"},
    "gif": {"1", "L", "P", "RGB", "RGBA"},
    "webp": {"RGB", "RGBA"},
    "bmp": {"1", "L", "P", "RGB", "RGBA"},
    "tiff": {"1", "L", "LA", "I", "I;16", "F", "P", "RGB", "RGBA", "CMYK"},
}

#: Formats Pillow can store EXIF in (for the others, orientation goes into the pixels).
EXIF_FORMATS = ("jpg", "png", "webp", "tiff")

DEFAULT_QUALITY = {"jpg": 85, "webp": 80}


@dataclass(frozen=True)
class Frames:
    """Decoded pixels: one frame for a still image, several for an animation."""

    images: tuple[PILImage.Image, ...]
    durations: tuple[int, ...] = ()
    loop: int | None = None

    @property
    def first(self) -> PILImage.Image:
        return self.images[0]

    def map(self, fn: Callable[[PILImage.Image], PILImage.Image]) -> Frames:
        return Frames(tuple(fn(im) for im in self.images), self.durations, self.loop)


@dataclass(frozen=True)
class EncodeOptions:
    """How to write an image; ``None`` means the format's default."""

    quality: int | None = None
    progressive: bool = False
    optimize: bool = False
    lossless: bool = False
    compress_level: int | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    #: Further Pillow save parameters, applied last (they override the above).
    extra: dict[str, object] = field(default_factory=dict)


def open_image(data: Data, allowed: Sequence[str] = FORMATS) -> ImageFile.ImageFile:
    """Open ``data`` (header only) with the first allowed plugin that recognises it.

    ``data`` may be a memoryview borrowed for the length of a call: it is read in
    place, never copied whole.
    """
    # Pillow's Image.open tries every plugin and hides why each one refused; asking
    # the allowed plugins directly keeps the allowlist and tells truncation apart.
    prefix = bytes(data[:_PREFIX])
    for fmt in allowed:
        factory, accept = PILImage.OPEN[PILLOW_NAME[fmt]]
        verdict = accept(prefix) if accept else True
        if isinstance(verdict, str) or not verdict:
            continue
        fp = buffers.reader(data)
        try:
            return factory(fp, "")
        except Exception as exc:  # mapped to a reason below
            if raised_by_mirage(exc):
                raise  # a bug, not bad data
            raise _header_error(fmt, data, fp, exc) from exc
    if evidence.signature_only(data, allowed):
        raise TruncatedImage("input is only the signature of an image")
    raise UnsupportedImageFormat("not an image in an allowed format")


def _header_error(fmt: str, data: Data, fp: object, exc: Exception) -> MirageError:
    """The reason a plugin that recognised ``data`` could not read its header, decided
    by what the header declares and whether the data ran out."""
    if evidence.declares_zero_size(fmt, data):
        return InvalidDimensions(f"the header declares a zero width or height: {exc}")
    if evidence.unsupported_variant(fmt, data, exc):
        return UnsupportedFeature(f"{type(exc).__name__}: {exc}")
    if evidence.ran_out(fp, data):  # type: ignore[arg-type]
        return TruncatedImage(f"header ends early: {exc}")
    error = classify(exc, "decode")
    return DecodeFailed(str(error)) if isinstance(error, TruncatedImage) else error


def decode_error(im: ImageFile.ImageFile, fp: object, data: Data, exc: Exception) -> MirageError:
    """The reason decoding pixels failed: truncated only if the decoder really read to
    the end of the data, unsupported if a valid TIFF needs a codec this build lacks."""
    error = classify(exc, "decode")
    short = isinstance(exc, ValueError) and "not enough image data" in str(exc)
    if isinstance(error, TruncatedImage) or short:
        if evidence.ran_out(fp, data):  # type: ignore[arg-type]
            return TruncatedImage(str(error))
        return DecodeFailed(str(error))
    if isinstance(error, DecodeFailed) and im.format == "TIFF" and evidence.tiff_codec_missing(im):
        return UnsupportedFeature(f"TIFF compression not in this build: {error}")
    return error


def verify(data: Data, im: ImageFile.ImageFile, allowed: Sequence[str]) -> ImageFile.ImageFile:
    """Check what decoding does not, returning an image ready to load."""
    if im.format == "PNG":
        # Pillow checks no IDAT checksums while decoding; verify walks every chunk's
        # CRC (cheap next to inflating) so corrupt files fail instead of passing.
        im.verify()
        return open_image(data, allowed)
    return im


def has_alpha(im: PILImage.Image) -> bool:
    return im.mode in ALPHA_MODES or "transparency" in im.info


def decode_frames(im: ImageFile.ImageFile, count: int) -> Frames:
    """Load the first ``count`` frames of an opened image as independent images.

    A later frame that is corrupt or cut short ends the animation there: the frames
    before it are kept and a warning says how many were dropped (the first frame
    must decode, or the call fails). Frames come back as stored (Pillow's TIFF reader
    turns images upright while loading; that is undone so every format follows one
    rule) and without ``info``,
    so nothing of the source's metadata reaches an encoder unless asked for.
    """
    if count <= 1:
        tagged = _tiff_orientation(im)
        im.load()
        im.fp = None  # loaded: drop the file, which may borrow the caller's buffer
        return Frames((_without_info(_as_stored(im, tagged)),))
    images, durations = [], []
    screen = im.size
    for index in range(count):
        deadline.check()  # between frames: a safe point to stop
        try:
            im.seek(index)
            im.load()
        except Exception as exc:
            error = classify(exc, "decode")
            if index == 0 or not isinstance(error, (DecodeFailed, TruncatedImage)):
                raise
            _log.warning(
                "frame %d of %d cannot be decoded (%s): keeping the first %d",
                index + 1,
                count,
                error,
                index,
            )
            break
        frame = resizable(im)
        # Pillow grows a GIF's canvas when a later frame reaches past it; every frame
        # is cut to the canvas the header declared (the GIF's logical screen), so all
        # frames share the size the image reports.
        fitted = frame.crop((0, 0, *screen)) if frame.size != screen else frame.copy()
        images.append(_without_info(fitted))
        durations.append(int(im.info.get("duration", 0) or 0))
    loop = im.info.get("loop")
    return Frames(tuple(images), tuple(durations), loop if isinstance(loop, int) else None)


def _tiff_orientation(im: ImageFile.ImageFile) -> int | None:
    tags = getattr(im, "tag_v2", None)
    return tags.get(0x0112) if tags is not None else None


#: EXIF orientation -> the transpose that makes the stored image upright.
UPRIGHT = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}

# Each transpose above undone: all are their own inverse but the quarter turns.
_TURNED_BACK = {
    PILImage.Transpose.ROTATE_270: PILImage.Transpose.ROTATE_90,
    PILImage.Transpose.ROTATE_90: PILImage.Transpose.ROTATE_270,
}
_UNDO = {o: _TURNED_BACK.get(t, t) for o, t in UPRIGHT.items()}


def _as_stored(im: ImageFile.ImageFile, tagged: int | None) -> PILImage.Image:
    pixels = resizable(im)
    tags = getattr(im, "tag_v2", None)
    if tagged in _UNDO and tags is not None and 0x0112 not in tags:
        # Pillow applied (and then dropped) the orientation while loading.
        return pixels.transpose(_UNDO[tagged])
    return pixels


def _without_info(im: PILImage.Image) -> PILImage.Image:
    """``im`` with its ``info`` (the source's metadata) cleared."""
    im.info = {}
    return im


def stored_size(im: ImageFile.ImageFile) -> tuple[int, int]:
    """The size of the stored pixels (Pillow reports TIFF 5-8 already turned)."""
    if _tiff_orientation(im) in (5, 6, 7, 8):
        return im.size[1], im.size[0]
    return im.size


def resizable(im: PILImage.Image) -> PILImage.Image:
    """A mode every resampling filter works on (Pillow resizes P and 1 nearest-only)."""
    if im.mode in ("P", "PA"):
        return im.convert("RGBA" if has_alpha(im) else "RGB")
    if im.mode == "1":
        return im.convert("L")
    if im.mode.startswith("I;16"):
        return im.convert("I")
    return im


def encode(frames: Frames, fmt: str, options: EncodeOptions) -> Encoded:
    """Write ``frames`` as ``fmt``; all frames when the format animates, else the first."""
    images = frames.images if fmt in ANIMATED else frames.images[:1]
    images = tuple(_private(_writable(im, fmt)) for im in images)
    options = replace(options, icc_profile=_profile_for(options.icc_profile, images[0].mode))
    params: dict[str, object] = {**_params(fmt, options), **options.extra}
    if len(images) > 1:
        params.update(save_all=True, append_images=list(images[1:]))
        if frames.durations:
            params["duration"] = list(frames.durations)
        if frames.loop is not None:
            params["loop"] = frames.loop
        elif fmt != "gif":
            params["loop"] = 1  # a GIF without a loop count plays once; 0 is forever
    file = buffers.scratch_file(sum(im.width * im.height for im in images))
    try:
        images[0].save(file, format=PILLOW_NAME[fmt], **params)
        file.flush()
        return Encoded(file)
    except Exception as exc:
        file.close()
        if raised_by_mirage(exc) and not isinstance(exc, MemoryError):
            raise  # a bug, not bad data
        raise classify(exc, "encode") from exc


def _private(im: PILImage.Image) -> PILImage.Image:
    """An image object of this call's own to save, sharing the pixels read-only.

    ``save()`` stores the call's options on the image it saves (``encoderinfo``,
    merged into the next save, and ``encoderconfig``, read while the GIL is released),
    and plugins add to them: saving a shared image from two threads mixes their options,
    and what is left behind leaks into later saves. A fresh object over the same pixel
    core keeps all of that per call. A palette lives in the core and may be rewritten
    when saving, so palette images are copied whole (one byte a pixel).
    """
    if im.mode in ("P", "PA"):
        return im.copy()
    return im._new(im.im)


# The colour space an ICC profile's header names (bytes 16-19), for each pixel mode.
_PROFILE_SPACE = {
    **dict.fromkeys(("RGB", "RGBA", "RGBX", "P", "PA"), b"RGB "),
    **dict.fromkeys(("1", "L", "LA", "I", "I;16", "F"), b"GRAY"),
    "CMYK": b"CMYK",
    "LAB": b"Lab ",
    "YCbCr": b"YCbr",
}


def _profile_for(icc: bytes | None, mode: str) -> bytes | None:
    """The source's profile, unless it describes another colour space than ``mode``'s
    (a CMYK or Lab source converted to RGB): such a profile would misdescribe the
    pixels, and readers may reject the file."""
    if icc is None:
        return None
    space = _PROFILE_SPACE.get(mode)
    return icc if space is None or icc[16:20] == space else None


def _writable(im: PILImage.Image, fmt: str) -> PILImage.Image:
    """``im`` in a mode ``fmt`` can store. A conversion's ``info`` is dropped: Pillow's
    Lab to RGB conversion attaches an sRGB profile stamped with the current time,
    which would make the output differ from one run to the next (and untagged RGB
    is sRGB to every reader anyway)."""
    if im.mode in _WRITABLE[fmt]:
        return im
    return _without_info(_converted(im, fmt))


def _converted(im: PILImage.Image, fmt: str) -> PILImage.Image:
    if im.mode == "I":
        # 16-bit sources are widened to I for resampling: back to 16 bits where the
        # format has them, else scaled (not clipped) to 8 bits.
        if fmt == "png":
            return im.convert("I;16")
        im = im.point(lambda v: v / 256, "L")
        if im.mode in _WRITABLE[fmt]:
            return im
    if fmt == "jpg" or im.mode not in ALPHA_MODES:
        return im.convert("RGB")
    return im.convert("RGBA")


def _params(fmt: str, options: EncodeOptions) -> dict[str, object]:
    params: dict[str, object] = {}
    if fmt in DEFAULT_QUALITY:
        params["quality"] = options.quality or DEFAULT_QUALITY[fmt]
    if fmt == "jpg":
        params.update(progressive=options.progressive, optimize=options.optimize)
    elif fmt == "png":
        params["optimize"] = options.optimize
        if options.compress_level is not None:
            params["compress_level"] = options.compress_level
    elif fmt == "webp":
        params["lossless"] = options.lossless
    elif fmt == "tiff":
        params["compression"] = "tiff_lzw"
    if options.icc_profile and fmt != "gif":
        params["icc_profile"] = options.icc_profile
    if options.exif and fmt in EXIF_FORMATS:
        params["exif"] = options.exif
    return params


def readable() -> list[str]:
    """Formats this Pillow build can decode (WebP needs libwebp compiled in)."""
    return [f for f in FORMATS if PILLOW_NAME[f] in PILImage.OPEN and _has_codec(f)]


def writable() -> list[str]:
    """Formats this Pillow build can encode."""
    return [f for f in FORMATS if PILLOW_NAME[f] in PILImage.SAVE and _has_codec(f)]


def _has_codec(fmt: str) -> bool:
    return fmt != "webp" or bool(features.check("webp"))
