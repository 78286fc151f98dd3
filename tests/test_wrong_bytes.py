"""Right bytes (issue 11, "Wrong bytes"): an image's output depends only on the image
and the call's options, whatever ran before or at the same time; struct and output
agree; colours and sizes are exactly the ones asked for; output is reproducible.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any

import pytest
from PIL import Image as PILImage

from mirage import geometry
from mirage.image import Image, crop, from_bytes, rotate, thumbnail, to_bytes
from tests.conftest import CORPUS, encode, gradient, is_close, open_bytes, requires_corpus

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


# --- animations whose later frames reach past the canvas ------------------------------------


def _descriptors(gif: bytes) -> list[int]:
    """Offsets of a GIF's image descriptors (0x2C blocks)."""
    pos, flags, found = 13, gif[10], []
    if flags & 0x80:
        pos += 3 * (2 << (flags & 7))
    while gif[pos] != 0x3B:
        if gif[pos] == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:
            found.append(pos)
            local = gif[pos + 9]
            pos += 10 + (3 * (2 << (local & 7)) if local & 0x80 else 0) + 1
        while gif[pos]:
            pos += gif[pos] + 1
        pos += 1
    return found


def extending_gif() -> bytes:
    """100x100 red, then a 100x100 blue frame placed at (50, 50): past the canvas."""
    red = PILImage.new("RGB", (100, 100), (255, 0, 0))
    blue = PILImage.new("RGB", (100, 100), (0, 0, 255))
    data = bytearray(
        encode(red, "GIF", save_all=True, append_images=[blue], duration=[100, 200], loop=0)
    )
    second = _descriptors(bytes(data))[1]
    data[second + 1 : second + 5] = (50).to_bytes(2, "little") * 2
    return bytes(data)


def _frames(data: bytes) -> list[PILImage.Image]:
    im = PILImage.open(io.BytesIO(data))
    out = []
    for index in range(getattr(im, "n_frames", 1)):
        im.seek(index)
        out.append(im.convert("RGBA"))
    return out


def test_the_extending_gif_really_extends() -> None:
    # The fixture is what it claims: Pillow grows the canvas to 150x150 at frame 1.
    im = PILImage.open(io.BytesIO(extending_gif()))
    assert im.size == (100, 100)
    im.seek(1)
    assert im.size == (150, 150)


@pytest.mark.parametrize("fmt", ["gif", "png", "webp"])
def test_frames_past_the_canvas_are_cut_to_it(fmt: str) -> None:
    image = from_bytes(extending_gif())
    assert (image.width, image.height, image.frames) == (100, 100, 2)
    frames = _frames(to_bytes(image, format=fmt))
    # Every frame kept, at the size the image reports, showing what a browser shows:
    # frame 1 is red with the part of the blue frame that falls on the canvas.
    assert [f.size for f in frames] == [(100, 100)] * 2
    assert all(f.getpixel((25, 25))[2] < 10 for f in frames)
    assert frames[0].getpixel((75, 75))[2] < 10
    assert is_close(frames[1].getpixel((75, 75)), (0, 0, 255, 255), 4)


def test_thumbnail_of_frames_past_the_canvas() -> None:
    data, image = thumbnail(extending_gif(), 50, 50, format="gif")
    frames = _frames(data)
    assert (image.width, image.height, image.frames) == (50, 50, 2)
    assert [f.size for f in frames] == [(50, 50)] * 2
    assert is_close(frames[1].getpixel((12, 12)), (255, 0, 0, 255), 4)
    assert is_close(frames[1].getpixel((40, 40)), (0, 0, 255, 255), 4)


@requires_corpus
@pytest.mark.parametrize("name", ["test_extents.gif", "test_extents_transparency.gif"])
@pytest.mark.parametrize("fmt", ["gif", "png", "webp"])
def test_pillow_extents_files(name: str, fmt: str) -> None:
    image = from_bytes((CORPUS / "gif" / "pillow" / name).read_bytes())
    frames = _frames(to_bytes(image, format=fmt))
    # Both frames are the same red once cut to the canvas, so encoders may merge them
    # (their durations added); whatever is written has the image's size.
    assert {f.size for f in frames} == {(image.width, image.height)}


# --- rotation backgrounds with alpha --------------------------------------------------------


def _rotated_png(source: PILImage.Image, background: tuple[int, ...]) -> PILImage.Image:
    image = from_bytes(encode(source, "PNG"))
    return open_bytes(to_bytes(rotate(image, 45, background=background), format="png"))


@pytest.mark.parametrize("background", [(10, 20, 30, 40), (200, 100, 50, 128), (9, 8, 7, 0)])
def test_rgba_rotation_corners_are_the_colour_asked_for(background: tuple[int, ...]) -> None:
    source = gradient((60, 40)).convert("RGBA")
    got = _rotated_png(source, background)
    assert got.mode == "RGBA"
    for corner in (
        (0, 0),
        (got.width - 1, 0),
        (0, got.height - 1),
        (got.width - 1, got.height - 1),
    ):
        assert got.getpixel(corner) == background, corner
    # The image itself is rotated as before: the centre is the source's centre colour.
    assert is_close(got.getpixel((got.width // 2, got.height // 2)), source.getpixel((30, 20)), 6)


def test_la_rotation_corner_is_the_colour_asked_for() -> None:
    background = (10, 20, 30, 40)
    got = _rotated_png(gradient((60, 40)).convert("LA"), background)
    expected = PILImage.new("RGBA", (1, 1), background).convert("LA").getpixel((0, 0))
    assert got.mode == "LA" and got.getpixel((0, 0)) == expected


def test_opaque_and_clear_backgrounds_on_rgba_unchanged() -> None:
    source = gradient((60, 40)).convert("RGBA")
    assert _rotated_png(source, (10, 20, 30, 255)).getpixel((0, 0)) == (10, 20, 30, 255)
    assert _rotated_png(source, (0, 0, 0, 0)).getpixel((0, 0)) == (0, 0, 0, 0)


# --- rounding: half up, exactly -------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "target", "fit", "size"),
    [
        ((512, 257), (256, 256), "contain", (256, 129)),  # 128.5
        ((257, 512), (256, 256), "contain", (129, 256)),
        ((512, 257), (256, 256), "fill", (256, 256)),
        ((514, 257), (100, 200), "cover", (400, 200)),
        ((20, 5), (2, 2), "contain", (2, 1)),  # 0.5 -> 1, also by the floor of 1
        ((20, 10), (5, 5), "contain", (5, 3)),  # 2.5 -> 3 (half to even gives 2)
        ((50, 10), (5, 5), "contain", (5, 1)),
        ((50, 30), (5, 5), "contain", (5, 3)),  # 3.0 stays 3
        # Exactly n.5, but n.4999... in floating point: 145 * (100 / 232).
        ((232, 145), (100, 100), "contain", (100, 63)),
        ((248, 155), (100, 100), "contain", (100, 63)),
    ],
    ids=str,
)
def test_sizes_on_a_half_round_up(
    src: tuple[int, int], target: tuple[int, int], fit: geometry.Fit, size: tuple[int, int]
) -> None:
    assert geometry.plan(src, target, fit).size == size


def test_round_half_up_rule() -> None:
    halves = [Fraction(n, 2) for n in range(-1, 12)]
    assert [geometry.round_half_up(h) for h in halves] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    assert geometry.round_half_up(Fraction(2499, 1000)) == 2


def test_thumbnail_contain_rounds_half_up() -> None:
    data, image = thumbnail(encode(gradient((512, 257)), "PNG"), 256, 256, fit="contain")
    assert (image.width, image.height) == (256, 129)
    assert open_bytes(data).size == (256, 129)


# --- same input, same bytes -----------------------------------------------------------------


def _lab_tiff() -> bytes:
    return encode(gradient((40, 30)).convert("LAB"), "TIFF")


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_lab_source_gives_the_same_bytes_every_time(fmt: str) -> None:
    first = to_bytes(from_bytes(_lab_tiff()), format=fmt)
    # An ICC creation date has one-second resolution: let the clock move on.
    time.sleep(1.05)
    assert to_bytes(from_bytes(_lab_tiff()), format=fmt) == first
    # No profile made up for the occasion (untagged RGB is sRGB).
    assert "icc_profile" not in open_bytes(first).info


@requires_corpus
def test_corpus_lab_tiff_to_png_is_reproducible() -> None:
    data = (CORPUS / "tiff" / "pillow" / "lab.tif").read_bytes()
    first = to_bytes(from_bytes(data), format="png")
    time.sleep(1.05)
    assert to_bytes(from_bytes(data), format="png") == first


def _profile(space: bytes) -> bytes:
    # A profile header is 128 bytes; readers here look only at the colour space.
    return b"\0" * 16 + space + b"\0" * 108


def test_a_profile_for_another_colour_space_is_not_attached() -> None:
    cmyk = encode(gradient((40, 30)).convert("CMYK"), "JPEG", icc_profile=_profile(b"CMYK"))
    image = from_bytes(cmyk)
    assert "icc_profile" not in open_bytes(to_bytes(image, format="png")).info
    # Kept where the pixels stay CMYK.
    assert open_bytes(to_bytes(image, format="jpg")).info["icc_profile"] == _profile(b"CMYK")


def test_a_matching_profile_is_kept() -> None:
    rgb = encode(gradient((40, 30)), "PNG", icc_profile=_profile(b"RGB "))
    assert open_bytes(to_bytes(from_bytes(rgb), format="webp")).info["icc_profile"] == _profile(
        b"RGB "
    )
