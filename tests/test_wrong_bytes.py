"""Right bytes (issue 11, "Wrong bytes"): an image's output depends only on the image
and the call's options, whatever ran before or at the same time; struct and output
agree; colours and sizes are exactly the ones asked for; output is reproducible.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from PIL import Image as PILImage

from mirage.image import Image, crop, from_bytes, thumbnail, to_bytes
from tests.conftest import encode, gradient

# One option set per encoder path, including the ones that leave state behind on the
# image they save in Pillow (quality/progressive in encoderconfig, compress_level and
# lossless in encoderinfo, GIF's palette work, TIFF's compression).
OPTION_SETS: list[dict[str, Any]] = [
    {"format": "jpg", "quality": 5},
    {"format": "jpg", "quality": 95, "progressive": True},
    {"format": "png", "compress_level": 9},
    {"format": "png"},
    {"format": "webp", "lossless": True},
    {"format": "webp", "quality": 10},
    {"format": "tiff"},
    {"format": "gif"},
    {"format": "bmp"},
]

THREADS = 8
ROUNDS = 2


def _cropped(mode: str) -> Image:
    source = gradient((300, 200)).convert(mode)
    return crop(from_bytes(encode(source, "PNG")), 7, 5, 250, 170)


def _resized(mode: str) -> Image:
    source = gradient((300, 200)).convert(mode)
    return thumbnail(encode(source, "PNG"), 180, 120, format="png")[1]


MAKERS: dict[str, Callable[[str], Image]] = {"crop": _cropped, "resize": _resized}


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("made_by", sorted(MAKERS))
def test_concurrent_encodes_of_one_image_match_solo_references(made_by: str, mode: str) -> None:
    make = MAKERS[made_by]
    # Each reference from an image of its own that was never encoded before.
    solo = [to_bytes(make(mode), **options) for options in OPTION_SETS]
    shared = make(mode)
    barrier = threading.Barrier(THREADS)

    def caller(offset: int) -> list[tuple[int, bytes | str]]:
        barrier.wait()  # start together so the encodes overlap
        out: list[tuple[int, bytes | str]] = []
        for step in range(ROUNDS * len(OPTION_SETS)):
            index = (offset + step) % len(OPTION_SETS)
            try:
                out.append((index, to_bytes(shared, **OPTION_SETS[index])))
            except Exception as exc:  # noqa: BLE001 - reported as a mismatch below
                out.append((index, repr(exc)))
        return out

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = [r for rs in pool.map(caller, range(THREADS)) for r in rs]
    wrong = sorted({str(OPTION_SETS[i]) for i, got in results if got != solo[i]})
    assert wrong == [], f"outputs differing from the solo reference: {wrong}"
    # And the image is not left changed: the same calls, one at a time, afterwards.
    again = [to_bytes(shared, **options) for options in OPTION_SETS]
    stale = [str(o) for o, a, b in zip(OPTION_SETS, again, solo, strict=True) if a != b]
    assert stale == [], f"sequential outputs changed after concurrent use: {stale}"


def test_earlier_options_do_not_leak_into_later_encodes() -> None:
    # Sequential, one thread: every option set after every other one.
    image = _cropped("RGB")
    solo = [to_bytes(_cropped("RGB"), **options) for options in OPTION_SETS]
    for first in OPTION_SETS:
        to_bytes(image, **first)
        for options, reference in zip(OPTION_SETS, solo, strict=True):
            assert to_bytes(image, **options) == reference, (first, options)


def test_encoding_leaves_the_held_pixels_untouched() -> None:
    image = _cropped("RGB")
    pixels = image._pixels
    assert pixels is not None
    before = [(im.mode, im.size, dict(im.info), im.tobytes()) for im in pixels.images]
    for options in OPTION_SETS:
        to_bytes(image, **options)
    after = [(im.mode, im.size, dict(im.info), im.tobytes()) for im in pixels.images]
    assert after == before
    for im in pixels.images:
        assert not hasattr(im, "encoderinfo") and not hasattr(im, "encoderconfig")


def test_palette_frames_are_saved_from_a_copy() -> None:
    # Palette images keep the palette in the pixel core, which saving may rewrite.
    from mirage import codec

    im = PILImage.new("P", (4, 4), 3)
    im.putpalette([i % 256 for i in range(768)])
    palette = im.getpalette()
    frames = codec.Frames((im,))
    with codec.encode(frames, "gif", codec.EncodeOptions()) as out:
        assert len(out) > 0
    assert im.getpalette() == palette and not hasattr(im, "encoderinfo")
