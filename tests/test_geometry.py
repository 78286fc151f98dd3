"""mirage.geometry: fit plans, gravity, orientation boxes and JPEG draft requests.

Plans are checked against numbers worked out by hand; ``stored_box`` against a brute
force over every integer box with Pillow's own EXIF transposes; ``draft_request``
against a real JPEG decoded at the scale Pillow picks for it.
"""

from __future__ import annotations

import io
import itertools
import math
import random

import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from mirage import geometry
from mirage.geometry import (
    FITS,
    GRAVITIES,
    Plan,
    centering,
    draft_request,
    plan,
    stored_box,
    swaps_axes,
    upright_size,
)
from tests.conftest import encode, exif_bytes, gradient

# --- plan(): exact numbers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "target", "fit", "upscale", "gravity", "expected"),
    [
        # 400x200 into 100x100: fill scales by 1/2 to 200x100 and crops a 200x200 square.
        ((400, 200), (100, 100), "fill", True, "center", Plan((100, 0, 300, 200), (100, 100))),
        ((400, 200), (100, 100), "fill", True, "west", Plan((0, 0, 200, 200), (100, 100))),
        ((400, 200), (100, 100), "fill", True, "east", Plan((200, 0, 400, 200), (100, 100))),
        # On a wide source only x of the gravity matters...
        ((400, 200), (100, 100), "fill", True, "north_west", Plan((0, 0, 200, 200), (100, 100))),
        ((400, 200), (100, 100), "fill", True, "south_east", Plan((200, 0, 400, 200), (100, 100))),
        ((400, 200), (100, 100), "fill", True, (0.25, 0.9), Plan((50, 0, 250, 200), (100, 100))),
        # ... and on a tall one only y.
        ((200, 400), (100, 100), "fill", True, "north", Plan((0, 0, 200, 200), (100, 100))),
        ((200, 400), (100, 100), "fill", True, "south", Plan((0, 200, 200, 400), (100, 100))),
        ((200, 400), (100, 100), "fill", True, "north_east", Plan((0, 0, 200, 200), (100, 100))),
        ((200, 400), (100, 100), "fill", True, "south_west", Plan((0, 200, 200, 400), (100, 100))),
        ((200, 400), (100, 100), "fill", True, "east", Plan((0, 100, 200, 300), (100, 100))),
        ((400, 200), (100, 100), "contain", True, "center", Plan((0, 0, 400, 200), (100, 50))),
        ((400, 200), (100, 100), "cover", True, "center", Plan((0, 0, 400, 200), (200, 100))),
        ((400, 200), (100, 100), "exact", True, "center", Plan((0, 0, 400, 200), (100, 100))),
        # Upscaling 50x40 into 100x100 (scale 2.5 to cover, 2 to fit).
        ((50, 40), (100, 100), "fill", True, "center", Plan((5, 0, 45, 40), (100, 100))),
        ((50, 40), (100, 100), "contain", True, "center", Plan((0, 0, 50, 40), (100, 80))),
        ((50, 40), (100, 100), "cover", True, "center", Plan((0, 0, 50, 40), (125, 100))),
        # upscale=False: never larger than the source, whatever the fit.
        ((50, 40), (100, 100), "fill", False, "center", Plan((0, 0, 50, 40), (50, 40))),
        ((50, 40), (100, 100), "contain", False, "center", Plan((0, 0, 50, 40), (50, 40))),
        ((50, 40), (100, 100), "cover", False, "center", Plan((0, 0, 50, 40), (50, 40))),
        ((50, 40), (100, 100), "exact", False, "center", Plan((0, 0, 50, 40), (50, 40))),
        ((50, 40), (30, 100), "exact", False, "center", Plan((0, 0, 50, 40), (30, 40))),
        # Scale capped at 1 on one axis only: crop the 100 middle columns, keep the height.
        ((300, 50), (100, 100), "fill", False, "center", Plan((100, 0, 200, 50), (100, 50))),
        ((300, 50), (100, 100), "fill", False, "east", Plan((200, 0, 300, 50), (100, 50))),
        # A shrink is unaffected by upscale=False.
        ((400, 200), (100, 100), "fill", False, "center", Plan((100, 0, 300, 200), (100, 100))),
        # Extreme aspect ratios: a 1-pixel strip stays at least 1 pixel.
        ((10000, 1), (100, 100), "fill", True, "center", Plan((4999.5, 0, 5000.5, 1), (100, 100))),
        ((10000, 1), (100, 100), "contain", True, "center", Plan((0, 0, 10000, 1), (100, 1))),
        ((10000, 1), (100, 100), "cover", True, "center", Plan((0, 0, 10000, 1), (1000000, 100))),
        ((1, 10000), (100, 100), "contain", True, "center", Plan((0, 0, 1, 10000), (1, 100))),
        ((1, 10000), (100, 100), "fill", True, "north", Plan((0, 0, 1, 1), (100, 100))),
        # 1x1 targets.
        ((640, 427), (1, 1), "fill", True, "center", Plan((106.5, 0, 533.5, 427), (1, 1))),
        ((640, 427), (1, 1), "contain", True, "center", Plan((0, 0, 640, 427), (1, 1))),
        ((640, 427), (1, 1), "cover", True, "center", Plan((0, 0, 640, 427), (1, 1))),
        ((1, 1), (1, 1), "fill", True, "center", Plan((0, 0, 1, 1), (1, 1))),
        # A 1x1 source filling 25x17 is cut to the 17/25-high middle of its one pixel.
        ((1, 1), (25, 17), "fill", True, "center", Plan((0, 0.16, 1, 0.84), (25, 17))),
        # Rounding: 10x5 at 0.3 is 3x1.5, which rounds (half up) to 3x2.
        ((10, 5), (3, 3), "contain", True, "center", Plan((0, 0, 10, 5), (3, 2))),
        ((4, 1), (2, 2), "contain", True, "center", Plan((0, 0, 4, 1), (2, 1))),
    ],
    ids=str,
)
def test_plan_exact(
    src: tuple[int, int],
    target: tuple[int, int],
    fit: geometry.Fit,
    upscale: bool,
    gravity: str | tuple[float, float],
    expected: Plan,
) -> None:
    got = plan(src, target, fit, upscale=upscale, gravity=gravity)
    assert got.size == expected.size
    assert got.box == pytest.approx(expected.box)


@pytest.mark.parametrize("fit", FITS)
def test_plan_defaults_are_fill_with_upscale(fit: str) -> None:
    assert plan((40, 30), (80, 80)) == plan((40, 30), (80, 80), "fill", upscale=True)
    # Every fit's box lies within the source.
    left, top, right, bottom = plan((40, 30), (80, 80), fit).box  # type: ignore[arg-type]
    assert 0 <= left < right <= 40 and 0 <= top < bottom <= 30


def test_plan_invariants_on_random_sizes() -> None:
    rng = random.Random(20240611)
    for _ in range(2000):
        src = (rng.randint(1, 5000), rng.randint(1, 5000))
        target = (rng.randint(1, 800), rng.randint(1, 800))
        upscale = rng.random() < 0.5
        gravity = (rng.random(), rng.random())
        for fit in FITS:
            p = plan(src, target, fit, upscale=upscale, gravity=gravity)  # type: ignore[arg-type]
            left, top, right, bottom = p.box
            assert -1e-9 <= left < right <= src[0] + 1e-9
            assert -1e-9 <= top < bottom <= src[1] + 1e-9
            assert p.size[0] >= 1 and p.size[1] >= 1
            if not upscale:
                # Never enlarged: no output pixel per less than one source pixel.
                assert p.size[0] <= max(right - left, 1) + 1e-9
                assert p.size[1] <= max(bottom - top, 1) + 1e-9
            if fit == "fill":
                assert p.size[0] <= target[0] and p.size[1] <= target[1]
                if upscale:
                    assert p.size == target
                # One scale for both axes: the box has the output's aspect ratio.
                sx, sy = p.size[0] / (right - left), p.size[1] / (bottom - top)
                assert sx == pytest.approx(sy, rel=1e-9)
            elif fit == "exact":
                assert p.box == (0, 0, *src)
                if upscale:
                    assert p.size == target
            else:
                assert p.box == (0, 0, *src)
                if fit == "contain" and upscale:
                    # Fits inside, one side touching the box (rounding may floor to 1 px).
                    assert p.size[0] <= target[0] and p.size[1] <= target[1]
                    assert target[0] in p.size[:1] or target[1] in p.size[1:]
                if fit == "cover" and upscale:
                    assert p.size[0] >= target[0] and p.size[1] >= target[1]
                    assert target[0] in p.size[:1] or target[1] in p.size[1:]


# --- gravity ----------------------------------------------------------------------------------


def test_named_gravities() -> None:
    assert GRAVITIES == {
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
    for name, pair in GRAVITIES.items():
        assert centering(name) == pair


@pytest.mark.parametrize("pair", [(0, 0), (1, 1), (0.3, 0.7), (1, 0)], ids=str)
def test_gravity_pairs_are_floats(pair: tuple[float, float]) -> None:
    got = centering(pair)
    assert got == (float(pair[0]), float(pair[1]))
    assert all(isinstance(v, float) for v in got)


@pytest.mark.parametrize("pair", [(1.5, 0.5), (-0.1, 0.5), (0.5, 1.01), (0.5, -1)], ids=str)
def test_gravity_out_of_range_is_refused(pair: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="within"):
        centering(pair)
    with pytest.raises(ValueError):
        plan((400, 200), (100, 100), "fill", gravity=pair)


def test_unknown_gravity_name() -> None:
    with pytest.raises(KeyError):
        centering("up")


def test_gravity_is_ignored_when_nothing_is_cropped() -> None:
    # contain/cover/exact keep the whole image, so gravity cannot matter.
    for fit in ("contain", "cover", "exact"):
        boxes = {plan((400, 200), (100, 100), fit, gravity=g).box for g in GRAVITIES}  # type: ignore[arg-type]
        assert boxes == {(0.0, 0.0, 400.0, 200.0)}


# --- orientation ------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_size(orientation: int) -> None:
    swapped = orientation >= 5
    assert swaps_axes(orientation) is swapped
    assert upright_size((30, 20), orientation) == ((20, 30) if swapped else (30, 20))


def _upright_by_pillow(stored: PILImage.Image, orientation: int) -> PILImage.Image:
    """The stored pixels as displayed, by Pillow's own reading of the EXIF tag."""
    tagged = stored.copy()
    tagged.getexif()[0x0112] = orientation
    return ImageOps.exif_transpose(tagged)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_stored_box_matches_pillow_transposes(orientation: int) -> None:
    # Brute force: for every integer box on the upright image, cropping the upright
    # image equals cropping stored_box() of the stored image and turning that upright.
    stored = PILImage.frombytes("RGB", (7, 5), random.Random(orientation).randbytes(7 * 5 * 3))
    upright = _upright_by_pillow(stored, orientation)
    assert upright.size == upright_size(stored.size, orientation)
    uw, uh = upright.size
    checked = 0
    for left, right in itertools.combinations(range(uw + 1), 2):
        for top, bottom in itertools.combinations(range(uh + 1), 2):
            box = (left, top, right, bottom)
            sbox = stored_box(box, orientation, stored.size)
            assert all(float(v).is_integer() for v in sbox)
            piece = stored.crop(tuple(int(v) for v in sbox))  # type: ignore[arg-type]
            assert _upright_by_pillow(piece, orientation).tobytes() == upright.crop(box).tobytes()
            checked += 1
    assert checked == math.comb(uw + 1, 2) * math.comb(uh + 1, 2)


@pytest.mark.parametrize("orientation", [0, 1, 9])
def test_stored_box_identity_for_upright_and_unknown(orientation: int) -> None:
    box = (1.5, 2.0, 4.25, 5.0)
    assert stored_box(box, orientation, (10, 8)) == box


def test_stored_box_keeps_fractional_boxes() -> None:
    # Fill plans have fractional boxes; the mapping is affine, so they map exactly.
    assert stored_box((1.5, 0.25, 3.5, 2.0), 6, (10, 8)) == (0.25, 4.5, 2.0, 6.5)
    assert stored_box((1.5, 0.25, 3.5, 2.0), 8, (10, 8)) == (8.0, 1.5, 9.75, 3.5)


# --- draft_request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "target", "fit"),
    [
        ((2400, 1600), (100, 100), "fill"),
        ((2400, 1600), (150, 150), "fill"),
        ((2400, 1600), (600, 400), "exact"),
        ((2400, 1600), (37, 500), "fill"),
        ((4000, 3000), (1, 1), "contain"),
        ((640, 427), (640, 427), "fill"),
        ((100, 100), (3, 900), "cover"),
    ],
    ids=str,
)
def test_draft_request_leaves_twice_the_pixels(
    stored: tuple[int, int], target: tuple[int, int], fit: geometry.Fit
) -> None:
    p = plan(stored, target, fit)
    req = draft_request(p.box, p.size, stored)
    box_w, box_h = p.box[2] - p.box[0], p.box[3] - p.box[1]
    # The crop box, at the requested whole-image size, is >= 2x the output on each axis...
    assert req[0] * box_w / stored[0] >= 2 * p.size[0] - 1e-6
    assert req[1] * box_h / stored[1] >= 2 * p.size[1] - 1e-6
    # ... and the request is the smallest whole size that does so.
    assert (req[0] - 1) * box_w / stored[0] < 2 * p.size[0]
    assert (req[1] - 1) * box_h / stored[1] < 2 * p.size[1]


@pytest.mark.parametrize(
    ("target", "scale"),
    [((100, 100), 8), ((150, 150), 4), ((300, 300), 2), ((600, 400), 2), ((601, 400), 1)],
    ids=str,
)
def test_draft_request_with_pillow_picks_the_largest_dct_scale(
    target: tuple[int, int], scale: int
) -> None:
    # A real 2400x1600 JPEG: Pillow's draft takes the request and reduces by 1/scale.
    stored = (2400, 1600)
    im = PILImage.open(io.BytesIO(encode(gradient((240, 160)).resize(stored), "JPEG")))
    p = plan(stored, target, "fill")
    req = draft_request(p.box, p.size, stored)
    im.draft("RGB", req)
    assert im.size == (stored[0] // scale, stored[1] // scale)
    box_w = (p.box[2] - p.box[0]) / scale
    box_h = (p.box[3] - p.box[1]) / scale
    assert box_w >= 2 * p.size[0] and box_h >= 2 * p.size[1]
    if scale < 8:
        # Twice the reduction would leave less than 2x on some axis.
        assert box_w / 2 < 2 * p.size[0] or box_h / 2 < 2 * p.size[1]


def test_exif_helper_round_trips() -> None:
    # The conftest helper the orientation tests rely on.
    data = encode(gradient((4, 4)), "JPEG", exif=exif_bytes(6, Make="Acme"))
    exif = PILImage.open(io.BytesIO(data)).getexif()
    assert exif[0x0112] == 6 and exif[0x010F] == "Acme"
