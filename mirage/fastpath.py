"""Speed tuning of :func:`mirage.image.thumbnail` (issue 12), kept out of the core's shape.

A thumbnail is small and made often, so it trades a little encoder effort for time
where the output stays close in size, and resamples animation frames on every core.
Each choice says why next to it; what it buys is measured by ``bench/cases.py`` and
``make bench`` (figures in ``docs/benchmarks.md``, never here). :func:`to_bytes` and
the codec keep Pillow's defaults: only the thumbnail path asks for these.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from PIL import Image as PILImage

from mirage import webpscale
from mirage.codec import Frames
from mirage.geometry import draft_request

# Encoder settings for thumbnails, per output format (EncodeOptions fields).
# - png: zlib level 2 instead of 6. Deflate at level 6 costs about three times the
#   resample of a 256x256 RGBA thumbnail, for output only a few per cent smaller;
#   level 2 still writes smaller files than libvips' default.
# - webp: libwebp method 2 instead of Pillow's 4 (libvips' default effort is also 4):
#   half the encode time, output within a few per cent of method 4's size at the
#   same quality setting.
# - gif: no palette optimisation pass: the frames come with compact palettes
#   already (see palettes), and the pass compares every frame's colours again.
_ENCODE: dict[str, dict[str, object]] = {
    "png": {"compress_level": 2},
    "webp": {"extra": {"method": 2}},
    "gif": {"extra": {"optimize": False}},
}

# JPEG decoding: with the default bilinear filter, at the largest DCT scale whose
# result still covers the output (libvips' choice), not the one that leaves 2x for
# the resample (Pillow's Image.thumbnail): the entropy decoding costs the same either
# way, but the inverse DCT, colour conversion and resample shrink 4x. The scaled DCT
# is a block average, so the difference from the reference (tests/test_imaging.py)
# stays that of the filter itself. A caller who asks for bicubic or Lanczos asks for
# quality, and keeps the 2x margin, which leaves the result much closer to the
# reference than covering alone does.
_DRAFT_MARGIN = {PILImage.Resampling.NEAREST: 1.0, PILImage.Resampling.BILINEAR: 1.0}


def draft_margin(filter_: PILImage.Resampling) -> float:
    """How many times the output's pixels a JPEG draft must leave (see _DRAFT_MARGIN)."""
    return _DRAFT_MARGIN.get(filter_, 2.0)


def webp_draft(
    data: bytes | memoryview,
    stored: tuple[int, int],
    draft: tuple[tuple[float, float, float, float], tuple[int, int], float],
) -> tuple[PILImage.Image, tuple[float, float]] | None:
    """A still WebP decoded by libwebp at the scale a JPEG draft would get (the same
    margin), with the (x, y) scale; ``None`` to decode in full with Pillow instead."""
    box, size, margin = draft
    return webpscale.decode_scaled(data, stored, draft_request(box, size, stored, margin))


# Below this many output pixels (all frames) threads cost more than they save.
_PARALLEL_ABOVE = 4 * 256 * 256

# The shared GIF palette is cut from a side x side sample of up to this many frames.
_PALETTE_SIDE = 32
_PALETTE_FRAMES = 64

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def encode_options(fmt: str) -> dict[str, Any]:
    """Encoder settings a thumbnail in ``fmt`` is written with (see ``_ENCODE``)."""
    options = _ENCODE.get(fmt, {})
    return {k: dict(v) if isinstance(v, dict) else v for k, v in options.items()}


# The most threads the current call may use (thumbnail's ``threads``); None: the
# cores. A server whose callers already keep every core busy gains nothing from
# more threads per call, and a benchmark of concurrency wants one per call.
_threads_at_most: ContextVar[int | None] = ContextVar("mirage_threads_at_most", default=None)


@contextmanager
def threads_at_most(limit: int | None) -> Iterator[None]:
    """Within the block, the current call uses at most ``limit`` threads."""
    token = _threads_at_most.set(limit)
    try:
        yield
    finally:
        _threads_at_most.reset(token)


def threads_allowed(wanted: int) -> int:
    """How many of ``wanted`` threads the current call may use."""
    limit = _threads_at_most.get()
    return max(1, wanted if limit is None else min(wanted, limit))


def map_frames(
    fn: Callable[[PILImage.Image], PILImage.Image], frames: Frames, out_pixels: int
) -> Frames:
    """``frames.map(fn)``, on several threads for a large animation.

    Pillow releases the GIL in its resampling loops, so the frames of an animation
    (independent once decoded) are resampled on every core. A still image, or a
    small animation, stays on the caller's thread.
    """
    if len(frames.images) < 2 or out_pixels <= _PARALLEL_ABOVE or threads_allowed(_workers()) < 2:
        return frames.map(fn)
    images = tuple(_executor().map(fn, frames.images))
    return Frames(images, frames.durations, frames.loop)


def palettes(frames: Frames, fmt: str) -> Frames:
    """Frames of an animated GIF thumbnail, mapped onto one shared 256-colour palette.

    Left to itself, Pillow's GIF writer quantises every RGB frame with median cut,
    which costs tens of times the resample. One median cut over a sample of every
    frame's pixels, then a cheap nearest-colour mapping per frame, keeps colours
    close to per-frame quantisation (the fast octree quantiser is cheaper still but
    uses far fewer colours on photographs) and lets the file carry one colour table.
    Frames with transparency are left to Pillow, which keeps it.
    """
    images = frames.images
    if fmt != "gif" or len(images) < 2 or any(im.mode != "RGB" for im in images):
        return frames
    step = max(1, len(images) // _PALETTE_FRAMES)
    sampled = images[::step]
    side = _PALETTE_SIDE
    sheet = PILImage.new("RGB", (side * len(sampled), side))
    for index, im in enumerate(sampled):
        # Nearest keeps real pixel colours; averaging would invent new ones.
        sheet.paste(im.resize((side, side), PILImage.Resampling.NEAREST), (index * side, 0))
    palette = sheet.quantize(256)
    return frames.map(lambda im: im.quantize(palette=palette, dither=PILImage.Dither.NONE))


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _workers() -> int:
    return min(cores(), 8)


def executor() -> ThreadPoolExecutor:
    """The process's shared worker pool (also mirage.pngfast's)."""
    return _executor()


def _executor() -> ThreadPoolExecutor:
    # One pool for the process, made on first use: concurrent thumbnails share it,
    # so an animation never adds more threads than there are cores.
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_workers(), thread_name_prefix="mirage-frames")
        return _pool
