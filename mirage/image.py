"""Every image operation, on Pillow, with no knowledge of cffi, ports or nodes.

An :class:`Image` is immutable. One made by :func:`from_bytes` holds the encoded bytes
and what the header says; pixels are decoded only by the first operation that needs
them, and each operation decodes on its own (so one ``Image`` may be used from many
threads at once, and a JPEG can be decoded at a reduced DCT scale for a small output).
An ``Image`` returned by an operation holds its decoded pixels.

Sizes are those of the stored pixels. EXIF orientation is reported, applied by
:func:`auto_orient`, and applied by :func:`resize` and :func:`thumbnail` unless told
not to; :func:`crop`, :func:`rotate` and :func:`flip` work on the stored pixels and
carry the orientation along, so an encoded result still displays the right way up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, overload

from PIL import Image as PILImage
from PIL import ImageFile

from mirage import codec, deadline, fastpath, geometry, jpegdc, memory, metadata, pngfast, survey
from mirage.buffers import Encoded, Output, read_bytes
from mirage.codec import EncodeOptions, Frames
from mirage.errors import (
    InvalidDimensions,
    MirageError,
    TooManyPixels,
    TruncatedImage,
    raised_by_mirage,
    translate,
)
from mirage.formats import DEFAULT_ALLOWED, FORMATS, FROM_PILLOW

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: Largest image (width x height, summed over decoded frames) decoded or produced
#: unless the caller says otherwise. Below Pillow's own 89 MP warning, above any
#: phone camera's 48 MP.
DEFAULT_MAX_PIXELS = 50_000_000

T = TypeVar("T")

Filter = Literal["nearest", "bilinear", "bicubic", "lanczos"]
FILTERS: dict[str, PILImage.Resampling] = {
    "nearest": PILImage.Resampling.NEAREST,
    "bilinear": PILImage.Resampling.BILINEAR,
    "bicubic": PILImage.Resampling.BICUBIC,
    "lanczos": PILImage.Resampling.LANCZOS,
}

# The least pixels an animation frame is charged with (see _frames_cost).
_FRAME_FLOOR = survey.FRAME_FLOOR

#: Most JPEG scans decoded unless the caller says otherwise (see mirage.survey).
DEFAULT_MAX_SCANS = survey.DEFAULT_MAX_SCANS

# Integer pre-reduction (box filter) down to 3x the final size before resampling:
# most of the speed of a plain reduce, results indistinguishable from no reduction.
_REDUCING_GAP = 3.0

_UPRIGHT = codec.UPRIGHT

# Clockwise quarter turns, as Pillow (which turns counter-clockwise) names them.
_QUARTER_TURNS = {
    90: PILImage.Transpose.ROTATE_270,
    180: PILImage.Transpose.ROTATE_180,
    270: PILImage.Transpose.ROTATE_90,
}

_FLIPS = {
    "horizontal": PILImage.Transpose.FLIP_LEFT_RIGHT,
    "vertical": PILImage.Transpose.FLIP_TOP_BOTTOM,
}


@dataclass(frozen=True, eq=False)
class Image:
    """An image: what its header says, plus the bytes or pixels to work from.

    ``byte_size`` is the size of the encoded bytes it was read from or written to,
    ``None`` for pixels that exist only in memory (after :func:`crop` and friends).
    """

    format: str
    width: int
    height: int
    byte_size: int | None
    frames: int = 1
    orientation: int = 1
    _source: bytes | memoryview | None = field(default=None, repr=False)
    _pixels: Frames | None = field(default=None, repr=False)
    _allowed: tuple[str, ...] = field(default=DEFAULT_ALLOWED, repr=False)
    _exif: bytes | None = field(default=None, repr=False)
    _icc: bytes | None = field(default=None, repr=False)
    # GIF: each frame's canvas area as Pillow decodes it (see mirage.survey).
    _canvases: tuple[int, ...] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Info:
    """What an image's header says, from :func:`info`."""

    format: str
    width: int
    height: int
    frames: int
    orientation: int
    has_alpha: bool
    mode: str


def from_bytes(
    data: bytes | memoryview,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: Sequence[str] = DEFAULT_ALLOWED,
    max_scans: int = DEFAULT_MAX_SCANS,
) -> Image:
    """Read an image's header (format, size, orientation, frames) without its pixels.

    Raises :class:`~mirage.errors.MirageError` subclasses for bad data. A corrupt body
    is only noticed by the first operation that decodes pixels. A file whose
    structure would cost more than the limits (``max_scans`` JPEG scans, the
    structural caps of :mod:`mirage.survey`) is refused here with ``too_complex``.
    """
    # A held image outlives the caller's buffer: keep a copy (none if already bytes).
    return _read_header(bytes(data), max_pixels, tuple(allowed_formats), max_scans)[0]


def info(
    data: bytes | memoryview,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: Sequence[str] = DEFAULT_ALLOWED,
    max_scans: int = DEFAULT_MAX_SCANS,
) -> Info:
    """Describe an image from its header alone, so large ones can be refused cheaply."""
    image, im = _read_header(data, max_pixels, tuple(allowed_formats), max_scans)
    has_alpha = codec.has_alpha(im)
    return Info(
        image.format,
        image.width,
        image.height,
        image.frames,
        image.orientation,
        has_alpha,
        im.mode,
    )


class ThumbnailOptions(TypedDict, total=False):
    """The keyword options of :func:`thumbnail` (and :func:`resize`)."""

    fit: geometry.Fit
    gravity: str | tuple[float, float]
    filter: Filter
    upscale: bool
    auto_orient: bool
    format: str | None
    quality: int | None
    strip: bool
    frames: Literal["all", "first"]
    threads: int | Literal["auto"]
    max_pixels: int
    allowed_formats: Sequence[str]
    max_scans: int


class EncodeKeywords(TypedDict, total=False):
    """The keyword options of :func:`to_bytes`."""

    format: str | None
    quality: int | None
    progressive: bool
    optimize: bool
    lossless: bool
    compress_level: int | None
    strip: bool
    max_pixels: int


@overload
def thumbnail(
    source: bytes | memoryview | Image,
    width: int,
    height: int,
    **options: Unpack[ThumbnailOptions],
) -> tuple[bytes, Image]: ...


@overload
def thumbnail(
    source: bytes | memoryview | Image,
    width: int,
    height: int,
    *,
    output: Output[T],
    **options: Unpack[ThumbnailOptions],
) -> tuple[T, Image]: ...


def thumbnail(
    source: bytes | memoryview | Image,
    width: int,
    height: int,
    *,
    output: Output[Any] = read_bytes,
    fit: geometry.Fit = "fill",
    gravity: str | tuple[float, float] = "center",
    filter: Filter = "bilinear",
    upscale: bool = True,
    auto_orient: bool = True,
    format: str | None = None,
    quality: int | None = None,
    strip: bool = True,
    frames: Literal["all", "first"] = "all",
    threads: int | Literal["auto"] = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: Sequence[str] = DEFAULT_ALLOWED,
    max_scans: int = DEFAULT_MAX_SCANS,
) -> tuple[Any, Image]:
    """Resize into a ``width`` x ``height`` box the way libvips' thumbnail does.

    ``fit`` is one of :data:`~mirage.geometry.FITS` (``fill``: exact size, cropped by
    ``gravity``). The header is read first; a JPEG is decoded at the largest DCT scale
    that leaves 2x for the final resample; the stored pixels are reduced and
    resampled once, and only the small result is turned upright. Animations keep
    every frame and its timing unless ``frames="first"``. Encodes as ``format``
    (default: the source's) and returns the encoded bytes with an :class:`Image`
    holding the result.

    ``output`` receives the :class:`~mirage.buffers.Encoded` result and takes
    ownership of it; what it returns comes back in place of the bytes (a transport
    passes :func:`mirage.buffers.keep` to write the output where it needs it).

    ``threads`` is the most threads the call may use (decoding a large JPEG,
    resampling an animation's frames); ``"auto"`` lets it use the cores. The
    result is the same whatever it is.
    """
    if threads != "auto" and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or 'auto', got {threads!r}")
    with fastpath.threads_at_most(None if threads == "auto" else threads):
        opened = None
        if not isinstance(source, Image):
            # Read in place: the source is needed only for the length of this call.
            source, opened = _read_header(source, max_pixels, tuple(allowed_formats), max_scans)
        _check_positive(width, height)
        filter_ = FILTERS[filter]
        orientation = source.orientation if auto_orient else 1
        stored = (source.width, source.height)
        upright_plan = geometry.plan(
            geometry.upright_size(stored, orientation),
            (width, height),
            fit,
            upscale=upscale,
            gravity=gravity,
        )
        box = geometry.stored_box(upright_plan.box, orientation, stored)
        size = geometry.upright_size(upright_plan.size, orientation)
        out_format = format or source.format
        count = _frame_count(source, frames if out_format in codec.ANIMATED else "first")
        _check_budget(_frames_cost(size[0], size[1], count), max_pixels)

        margin = fastpath.draft_margin(filter_)
        pixels, scale = _decode(source, count, max_pixels, draft=(box, size, margin), opened=opened)
        box = (box[0] * scale[0], box[1] * scale[1], box[2] * scale[0], box[3] * scale[1])
        gap = None if filter_ == PILImage.Resampling.NEAREST else _REDUCING_GAP
        with translate("decode"):
            resized = fastpath.map_frames(
                lambda im: im.resize(size, filter_, box=box, reducing_gap=gap),
                pixels,
                size[0] * size[1] * len(pixels.images),
            )
            deadline.check()
            if orientation in _UPRIGHT:
                resized = resized.map(lambda im: im.transpose(_UPRIGHT[orientation]))
        result = _derived(source, resized, orientation=1 if auto_orient else source.orientation)
        written = replace(result, _pixels=fastpath.palettes(resized, out_format))
        tuned = fastpath.encode_options(out_format)
        encoded = None
        if out_format == "png" and strip and written._icc is None and written.orientation == 1:
            with translate("encode"):
                encoded = pngfast.encode(resized.images[0]) if len(resized.images) == 1 else None
        if encoded is None:
            encoded = _encode(written, out_format, strip=strip, quality=quality, **tuned)
        described = replace(result, format=out_format, byte_size=len(encoded))
        return output(encoded), described


@overload
def resize(
    image: Image, width: int, height: int, **options: Unpack[ThumbnailOptions]
) -> tuple[bytes, Image]: ...


@overload
def resize(
    image: Image,
    width: int,
    height: int,
    *,
    output: Output[T],
    **options: Unpack[ThumbnailOptions],
) -> tuple[T, Image]: ...


def resize(
    image: Image,
    width: int,
    height: int,
    *,
    output: Output[Any] = read_bytes,
    **options: Unpack[ThumbnailOptions],
) -> tuple[Any, Image]:
    """Resize to exactly ``width`` x ``height``: scale to cover, crop the centre.

    The image is first turned upright by its EXIF orientation. Uses a triangle
    (bilinear) filter and encodes in the source format. Takes the options of
    :func:`thumbnail`. Returns the new bytes and an :class:`Image` describing (and
    holding) the result, which can be resized again.
    """
    if not isinstance(image, Image):
        raise TypeError(f"image must be a mirage Image, got {type(image).__name__}")
    return thumbnail(image, width, height, output=output, **options)


def crop(
    image: Image, x: int, y: int, width: int, height: int, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image:
    """The ``width`` x ``height`` region at (``x``, ``y``) of the stored pixels."""
    for name, value in (("x", x), ("y", y)):
        _require_int(name, value)
        if value < 0:
            raise InvalidDimensions(f"{name} must not be negative, got {value}")
    _check_size(width, height, max_pixels)
    if x + width > image.width or y + height > image.height:
        raise InvalidDimensions(
            f"crop {width}x{height}+{x}+{y} exceeds the {image.width}x{image.height} image"
        )
    pixels, _ = _decode(image, _frame_count(image, "all"), max_pixels)
    with translate("decode"):
        return _derived(image, pixels.map(lambda im: im.crop((x, y, x + width, y + height))))


def rotate(
    image: Image,
    degrees: float,
    *,
    background: tuple[int, ...] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image:
    """Rotate clockwise by ``degrees``, growing the canvas to hold the whole image.

    Quarter turns are exact. Other angles resample bicubically and fill the
    uncovered corners with ``background`` (an RGB or RGBA tuple; default transparent
    for images with alpha, black otherwise).
    """
    turn = degrees % 360
    count = _frame_count(image, "all")
    # The expanded canvas is known before any work: refuse an over-budget result
    # before decoding and resampling the source.
    width, height = _rotated_size((image.width, image.height), turn)
    _check_budget(_frames_cost(width, height, count), max_pixels)
    pixels, _ = _decode(image, count, max_pixels)
    with translate("decode"):
        if turn == 0:
            rotated = pixels
        elif turn in _QUARTER_TURNS:
            rotated = pixels.map(lambda im: im.transpose(_QUARTER_TURNS[int(turn)]))
        else:
            rotated = pixels.map(lambda im: _rotate_free(im, turn, background))
    _check_budget(rotated.first.width * rotated.first.height * len(rotated.images), max_pixels)
    return _derived(image, rotated)


def flip(
    image: Image,
    direction: Literal["horizontal", "vertical"],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image:
    """Mirror left-right (``horizontal``) or top-bottom (``vertical``)."""
    method = _FLIPS[direction]
    pixels, _ = _decode(image, _frame_count(image, "all"), max_pixels)
    with translate("decode"):
        return _derived(image, pixels.map(lambda im: im.transpose(method)))


def auto_orient(image: Image, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Apply the EXIF orientation to the pixels; the result has orientation 1."""
    if image.orientation == 1:
        return image
    method = _UPRIGHT[image.orientation]
    pixels, _ = _decode(image, _frame_count(image, "all"), max_pixels)
    with translate("decode"):
        return _derived(image, pixels.map(lambda im: im.transpose(method)), orientation=1)


@overload
def to_bytes(image: Image, **options: Unpack[EncodeKeywords]) -> bytes: ...


@overload
def to_bytes(image: Image, *, output: Output[T], **options: Unpack[EncodeKeywords]) -> T: ...


def to_bytes(
    image: Image,
    *,
    output: Output[Any] = read_bytes,
    format: str | None = None,
    quality: int | None = None,
    progressive: bool = False,
    optimize: bool = False,
    lossless: bool = False,
    compress_level: int | None = None,
    strip: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Any:
    """Encode ``image``. ``strip`` (default) drops EXIF, XMP and comments but keeps
    the colour profile and the orientation; ``strip=False`` keeps the source's EXIF.

    ``output`` works as in :func:`thumbnail`.
    """
    encoded = _encode(
        image,
        format or image.format,
        strip=strip,
        quality=quality,
        progressive=progressive,
        optimize=optimize,
        lossless=lossless,
        compress_level=compress_level,
        max_pixels=max_pixels,
    )
    return output(encoded)


def footprint(image: Image) -> int:
    """An estimate of the memory ``image`` holds, in bytes: its decoded pixels as
    Pillow stores them, or else the encoded bytes it was read from."""
    if image._pixels is not None:
        return sum(im.width * im.height * _pixel_bytes(im.mode) for im in image._pixels.images)
    return len(image._source) if image._source is not None else 0


def _pixel_bytes(mode: str) -> int:
    # Pillow keeps 8-bit single-band modes in one byte, 16-bit in two, and
    # everything else (RGB included) in four bytes per pixel.
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith(("I;16", "BGR;15", "BGR;16")):
        return 2
    return 4


def formats() -> dict[str, list[str]]:
    """Which formats this installation reads and writes, and which it reads by default."""
    return {
        "read": codec.readable(),
        "write": codec.writable(),
        "allowed": [f for f in DEFAULT_ALLOWED if f in codec.readable()],
    }


def _read_header(
    data: bytes | memoryview,
    max_pixels: int,
    allowed: tuple[str, ...],
    max_scans: int = DEFAULT_MAX_SCANS,
) -> tuple[Image, ImageFile.ImageFile]:
    unknown = [f for f in allowed if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown formats in allowed_formats: {unknown}")
    with translate("decode"):
        # Before Pillow parses anything: its parsers walk markers, chunks, pages and
        # frames in Python, as many as the file holds.
        surveyed = survey.survey(data, allowed, max_pixels=max_pixels, max_scans=max_scans)
        im = codec.open_image(data, allowed)
        width, height = codec.stored_size(im)
        _check_size(width, height, max_pixels)
        # Pillow's n_frames walks every GIF frame and TIFF page (and fails on a corrupt
        # later one); the survey counted them within the budget's frame limit.
        frames = surveyed.frames or int(getattr(im, "n_frames", 1))
        exif = metadata.source_exif(im, data)
        image = Image(
            format=FROM_PILLOW[im.format or ""],
            width=width,
            height=height,
            byte_size=len(data),
            frames=frames,
            orientation=metadata.orientation(im, exif),
            _source=data,
            _allowed=allowed,
            _exif=exif,
            _icc=im.info.get("icc_profile"),
            _canvases=surveyed.canvases,
        )
    return image, im


def _require_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _check_positive(width: int, height: int) -> None:
    _require_int("width", width)
    _require_int("height", height)
    if width < 1 or height < 1:
        raise InvalidDimensions(f"size {width}x{height} is not positive")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    _check_positive(width, height)
    _check_budget(width * height, max_pixels)


def _frames_cost(width: int, height: int, count: int) -> int:
    """Pixels charged to the budget: every frame counts as at least 64x64 pixels,
    so that a flood of tiny frames (each costing far more than its pixels) is
    refused like a flood of pixels."""
    if count <= 1:
        return width * height
    return count * max(width * height, _FRAME_FLOOR)


def _source_cost(image: Image, count: int) -> int:
    """Pixels decoding ``count`` frames of ``image``'s source allocates: a GIF frame
    that extends past the canvas makes Pillow enlarge it for that frame and after."""
    canvases = image._canvases
    if canvases is None or len(canvases) < count:
        return _frames_cost(image.width, image.height, count)
    if count <= 1:
        return canvases[0]
    return sum(max(area, _FRAME_FLOOR) for area in canvases[:count])


def _check_budget(pixels: int, max_pixels: int) -> None:
    memory.note(pixels)  # a large call gives its memory back when it ends
    if pixels > max_pixels:
        raise TooManyPixels(f"{pixels} pixels exceed the budget of {max_pixels}")


def _frame_count(image: Image, frames: str) -> int:
    if frames == "first" or image.format not in codec.ANIMATED:
        return 1
    if image._pixels is not None:
        return len(image._pixels.images)
    return image.frames


def _decode(
    image: Image,
    count: int,
    max_pixels: int,
    draft: tuple[geometry.Box, tuple[int, int], float] | None = None,
    opened: ImageFile.ImageFile | None = None,
) -> tuple[Frames, tuple[float, float]]:
    """Decoded frames, and the (x, y) scale a JPEG draft or a scaled WebP decode
    applied to the stored size.

    ``opened`` is the image file :func:`_read_header` just opened on the same
    source, reused rather than parsed again.
    """
    deadline.check()
    if image._pixels is not None:
        held = image._pixels
        if count < len(held.images):
            held = Frames(held.images[:count], held.durations[:count], held.loop)
        return held, (1.0, 1.0)
    assert image._source is not None
    _check_budget(_source_cost(image, count), max_pixels)
    with translate("decode"):
        im = opened if opened is not None else codec.open_image(image._source, image._allowed)
        fp = im.fp  # kept: Pillow drops it on some failures, and it tells how far it read
        try:
            im = codec.verify(image._source, im, image._allowed)
            if im.fp is not fp:
                fp = im.fp
            if im.format in ("JPEG", "MPO") and not im.tile:
                raise TruncatedImage("the file ends before its image data")
            scale = (1.0, 1.0)
            if draft is not None and im.format == "WEBP" and count == 1:
                scaled = fastpath.webp_draft(image._source, im.size, draft)
                if scaled is not None:
                    return Frames((scaled[0],)), scaled[1]
            if draft is not None and im.format == "PNG" and count == 1:
                plain = pngfast.decode(image._source, im.size)
                if plain is not None:
                    im.fp = None  # decoded: drop the file, which may borrow the buffer
                    return Frames((plain,)), scale
            if draft is not None and im.format in ("JPEG", "MPO") and count == 1:
                box, size, margin = draft
                request = geometry.draft_request(box, size, im.size, margin)
                if jpegdc.applies(im.size, request):
                    eighth = jpegdc.decode(image._source, im.mode, im.size)
                    if eighth is not None:
                        im.fp = None  # decoded: drop the file, which may borrow the buffer
                        return Frames((eighth,)), (1 / jpegdc.SCALE,) * 2
                drafted = im.draft(im.mode, request)
                if drafted is not None:
                    # A DCT-scaled pixel covers n x n stored ones (the last row and
                    # column possibly fewer): one factor for both axes.
                    scale = (drafted[1][2] / image.width,) * 2
            return codec.decode_frames(im, count), scale
        except MirageError:
            raise
        except Exception as exc:
            if raised_by_mirage(exc) and not isinstance(exc, MemoryError):
                raise  # a bug, not bad data
            raise codec.decode_error(im, fp, image._source, exc) from exc


def _derived(source: Image, pixels: Frames, *, orientation: int | None = None) -> Image:
    first = pixels.first
    return Image(
        format=source.format,
        width=first.width,
        height=first.height,
        byte_size=None,
        frames=len(pixels.images),
        orientation=source.orientation if orientation is None else orientation,
        _pixels=pixels,
        _allowed=source._allowed,
        _exif=source._exif,
        _icc=source._icc,
    )


def _rotated_size(size: tuple[int, int], degrees: float) -> tuple[int, int]:
    """The canvas Pillow's ``rotate(-degrees, expand=True)`` makes for ``size``: the
    bounding box of the turned corners, computed the way Pillow computes it."""
    width, height = size
    if degrees % 180 == 0:
        return width, height
    if degrees % 90 == 0:
        return height, width
    angle = math.radians(degrees)  # Pillow turns by -degrees, then negates again
    a, b = round(math.cos(angle), 15), round(math.sin(angle), 15)
    d, e = -b, a
    cx, cy = width / 2, height / 2
    c = a * -cx + b * -cy + cx
    f = d * -cx + e * -cy + cy
    xs = [a * x + b * y + c for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
    ys = [d * x + e * y + f for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
    return (
        math.ceil(max(xs)) - math.floor(min(xs)),
        math.ceil(max(ys)) - math.floor(min(ys)),
    )


def _rotate_free(
    im: PILImage.Image, degrees: float, background: tuple[int, ...] | None
) -> PILImage.Image:
    alpha = im.mode in codec.ALPHA_MODES
    if background is not None and len(background) == 4 and not alpha:
        im = im.convert("RGBA")
        alpha = True
    if background is None:
        background = (0, 0, 0, 0) if alpha else (0, 0, 0)
    # The colour in the image's own mode, converted the way Pillow converts pixels:
    # black is (0, 0, 0, 255) in CMYK, an RGB colour on greyscale is its luminance.
    colour = background if len(background) == 4 else (*background, 255)
    fill = PILImage.new("RGBA", (1, 1), colour).convert(im.mode).getpixel((0, 0))
    # Pillow turns counter-clockwise; Mirage, like ImageMagick and libvips, clockwise.
    rotated = im.rotate(-degrees, PILImage.Resampling.BICUBIC, expand=True, fillcolor=fill)
    if im.mode in ("RGBA", "LA") and isinstance(fill, tuple) and fill[-1] not in (0, 255):
        # Pillow rotates these modes premultiplied and takes the fill as premultiplied
        # too, so a partly transparent colour comes out brightened. A pixel is either
        # filled or computed from the source (never a blend of both), so the same
        # rotation of a coverage mask marks exactly the pixels to paint.
        covered = PILImage.new("L", im.size, 255).rotate(
            -degrees, PILImage.Resampling.BICUBIC, expand=True, fillcolor=0
        )
        rotated.paste(fill, mask=covered.point([255] + [0] * 255))
    return rotated


def _encode(
    image: Image,
    fmt: str,
    *,
    strip: bool,
    quality: int | None = None,
    progressive: bool = False,
    optimize: bool = False,
    lossless: bool = False,
    compress_level: int | None = None,
    extra: dict[str, object] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Encoded:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    pixels, _ = _decode(image, _frame_count(image, "all"), max_pixels)
    orientation = image.orientation
    if orientation != 1 and fmt not in codec.EXIF_FORMATS:
        # No EXIF to carry the orientation in: put it into the pixels.
        with translate("decode"):
            pixels = pixels.map(lambda im: im.transpose(_UPRIGHT[orientation]))
        orientation = 1
    exif = metadata.exif_for(None if strip else image._exif, orientation)
    deadline.check()
    return codec.encode(
        pixels,
        fmt,
        EncodeOptions(
            quality=quality,
            progressive=progressive,
            optimize=optimize,
            lossless=lossless,
            compress_level=compress_level,
            icc_profile=image._icc,
            exif=exif,
            extra=extra or {},
        ),
    )
