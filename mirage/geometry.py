"""Pure geometry: where to crop and what size to make, for each fit mode.

Boxes are ``(left, top, right, bottom)`` in floating-point source pixels, as Pillow's
``resize(box=...)`` takes them, so scaling and cropping happen in one resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Fit = Literal["fill", "contain", "cover", "exact"]
Box = tuple[float, float, float, float]

FITS: tuple[str, ...] = ("fill", "contain", "cover", "exact")

#: Named gravities as (x, y) centering: 0 is left/top, 1 is right/bottom.
GRAVITIES: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "north": (0.5, 0.0),
    "south": (0.5, 1.0),
    "east": (1.0, 0.5),
    "west": (0.0, 0.5),
    "north_east": (1.0, 0.0),
    "north_west": (0.0, 0.0),
    "south_east": (1.0, 1.0),
    "south_west": (0.0, 1.0),
}


@dataclass(frozen=True)
class Plan:
    """Take ``box`` of the source and resample it to ``size``."""

    box: Box
    size: tuple[int, int]


def centering(gravity: str | tuple[float, float]) -> tuple[float, float]:
    """The (x, y) centering for a gravity name or an explicit pair in [0, 1]."""
    if isinstance(gravity, str):
        return GRAVITIES[gravity]
    x, y = gravity
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ValueError(f"gravity {gravity!r} must lie within [0, 1] x [0, 1]")
    return float(x), float(y)


def plan(
    src: tuple[int, int],
    target: tuple[int, int],
    fit: Fit = "fill",
    *,
    upscale: bool = True,
    gravity: str | tuple[float, float] = "center",
) -> Plan:
    """Plan a resize of an image of size ``src`` into the ``target`` box.

    - ``fill``: exactly the target size; scaled to cover it, cropped by gravity.
    - ``contain``: fits inside the target, aspect ratio kept (one side matches).
    - ``cover``: covers the target, aspect ratio kept, nothing cropped.
    - ``exact``: stretched to the target size.

    Sizes are rounded by :func:`round_half_up`.

    With ``upscale=False`` the source is never enlarged, so the result may be
    smaller than asked for.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    sw, sh = src
    tw, th = target
    full: Box = (0.0, 0.0, float(sw), float(sh))
    if fit == "exact":
        size = (tw, th) if upscale else (min(tw, sw), min(th, sh))
        return Plan(full, size)
    # Exact fractions: a size that is n.5 in exact arithmetic must not become
    # n.4999... in floating point and round the other way.
    ratios = (Fraction(tw, sw), Fraction(th, sh))
    scale = max(ratios) if fit in ("fill", "cover") else min(ratios)
    if not upscale:
        scale = min(scale, Fraction(1))
    scaled = (max(1, round_half_up(sw * scale)), max(1, round_half_up(sh * scale)))
    if fit != "fill":
        return Plan(full, scaled)
    size = (min(tw, scaled[0]), min(th, scaled[1]))
    crop_w: Fraction = min(Fraction(sw), size[0] / scale)
    crop_h: Fraction = min(Fraction(sh), size[1] / scale)
    cx, cy = centering(gravity)
    left, top = float(sw - crop_w) * cx, float(sh - crop_h) * cy
    return Plan((left, top, left + float(crop_w), top + float(crop_h)), size)


def round_half_up(value: Fraction) -> int:
    """The one rounding rule for every size Mirage computes: n.5 rounds up.

    (libvips and ImageMagick do the same; Python's ``round`` would go to even, making
    512x257 contained in 256x256 come out 256x128 instead of 256x129.)
    """
    return math.floor(value + Fraction(1, 2))


def swaps_axes(orientation: int) -> bool:
    """EXIF orientations 5-8 store the image transposed (width and height swapped)."""
    return orientation >= 5


def upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The displayed size of a stored image with this EXIF orientation."""
    return (size[1], size[0]) if swaps_axes(orientation) else size


def stored_box(box: Box, orientation: int, stored: tuple[int, int]) -> Box:
    """Map a box on the upright image to the same pixels of the stored image.

    This lets a thumbnail resample the stored pixels first and rotate only the
    small result, instead of rotating the whole decoded image.
    """
    left, top, right, bottom = box
    w, h = stored
    match orientation:
        case 2:
            return (w - right, top, w - left, bottom)
        case 3:
            return (w - right, h - bottom, w - left, h - top)
        case 4:
            return (left, h - bottom, right, h - top)
        case 5:
            return (top, left, bottom, right)
        case 6:
            return (top, h - right, bottom, h - left)
        case 7:
            return (w - bottom, h - right, w - top, h - left)
        case 8:
            return (w - bottom, left, w - top, right)
        case _:
            return box


def draft_request(
    box: Box, size: tuple[int, int], stored: tuple[int, int], margin: float = 2.0
) -> tuple[int, int]:
    """The smallest whole-image size that still leaves ``margin`` x the output's pixels
    in the crop box for the resample (2x by default, as Pillow's ``Image.thumbnail``).

    JPEG can decode at 1/2, 1/4 or 1/8 scale; Pillow's ``draft`` picks the largest
    reduction whose result is at least this size.
    """
    sx = size[0] / max(box[2] - box[0], 1e-9)
    sy = size[1] / max(box[3] - box[1], 1e-9)
    return (
        max(1, math.ceil(stored[0] * sx * margin)),
        max(1, math.ceil(stored[1] * sy * margin)),
    )
