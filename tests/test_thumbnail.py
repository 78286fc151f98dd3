"""mirage.image: thumbnail and resize (fits, gravity, filters, EXIF orientation, the
JPEG draft, pixels against a reference on real photographs)."""

from __future__ import annotations

import pytest
from PIL import Image as PILImage
from PIL import ImageOps, JpegImagePlugin

from mirage import codec, geometry, jpegdc
from mirage.buffers import keep
from mirage.errors import InvalidDimensions, TooManyPixels
from mirage.formats import FORMATS, PILLOW_NAME
from mirage.image import from_bytes, resize, thumbnail
from tests.conftest import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    bands,
    bench_bytes,
    displayed,
    encode,
    exif_bytes,
    gradient,
    is_close,
    mean_abs_diff,
    open_bytes,
    quadrants,
    requires_bench,
)
from tests.imaging import encoded, marked, rgb_at, tag_of, upright

# --- targets and budgets ---------------------------------------------------------------------


def test_resize_target_over_budget() -> None:
    image = from_bytes(encoded(gradient((20, 20)), "png"))
    assert open_bytes(resize(image, 100, 100, max_pixels=10_000)[0]).size == (100, 100)
    with pytest.raises(TooManyPixels):
        resize(image, 101, 100, max_pixels=10_000)
    with pytest.raises(TooManyPixels):
        resize(image, 8000, 8000)  # over the default budget


def test_resize_rechecks_source_against_its_budget() -> None:
    # The source must fit the budget of the operation that decodes it, too.
    image = from_bytes(encoded(gradient((100, 100)), "png"))
    with pytest.raises(TooManyPixels):
        resize(image, 10, 10, max_pixels=9_999)


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (0, 0), (-5, 10), (10, -1)])
def test_zero_or_negative_target_is_invalid(width: int, height: int) -> None:
    image = from_bytes(encoded(gradient((20, 20)), "png"))
    with pytest.raises(InvalidDimensions):
        resize(image, width, height)


@pytest.mark.parametrize("bad", [10.0, "10", None, True], ids=repr)
def test_non_int_target_is_a_type_error(bad: object) -> None:
    image = from_bytes(encoded(gradient((20, 20)), "png"))
    with pytest.raises(TypeError):
        resize(image, bad, 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        resize(image, 10, bad)  # type: ignore[arg-type]


# --- resize: fill geometry -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ((300, 100), (50, 120)),  # wide to tall
        ((100, 300), (120, 50)),  # tall to wide
        ((40, 30), (400, 300)),  # upscale
        ((40, 30), (1, 1)),
        ((1, 1), (25, 17)),
        ((1000, 1), (1, 1000)),  # extreme aspect both ways
        ((97, 61), (97, 61)),  # same size
    ],
    ids=str,
)
def test_output_has_exact_size(source: tuple[int, int], target: tuple[int, int]) -> None:
    out, image = resize(from_bytes(encoded(gradient(source), "png")), *target)
    assert open_bytes(out).size == target
    assert (image.width, image.height) == target


def _fraction_close(im: PILImage.Image, colour: tuple[int, int, int]) -> float:
    raw = im.convert("RGB").tobytes()
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    return sum(is_close(p, colour) for p in pixels) / len(pixels)


@pytest.mark.parametrize(
    ("source", "target", "vertical"),
    [
        ((300, 100), (100, 100), True),  # crop only
        ((600, 200), (50, 50), True),  # crop and shrink
        ((300, 100), (20, 60), True),  # wide to tall
        ((100, 300), (100, 100), False),
        ((200, 600), (40, 40), False),
        ((100, 300), (60, 20), False),  # tall to wide
    ],
    ids=str,
)
def test_fill_keeps_the_centre_band(
    source: tuple[int, int], target: tuple[int, int], vertical: bool
) -> None:
    data = encoded(bands(source, [RED, GREEN, BLUE], vertical=vertical), "png")
    out = open_bytes(resize(from_bytes(data), *target)[0]).convert("RGB")
    width, height = target
    centre = out.getpixel((width // 2, height // 2))
    assert is_close(centre, GREEN, tolerance=2)
    # The filter may blend the outermost row/column with the neighbouring band.
    assert _fraction_close(out, GREEN) >= 0.9
    assert _fraction_close(out, RED) == 0
    assert _fraction_close(out, BLUE) == 0


def test_fill_crops_symmetrically() -> None:
    # 200x100 quadrants cropped to 100x100 keep all four quadrants, each a quarter.
    out = open_bytes(resize(from_bytes(encoded(quadrants((200, 100)), "png")), 100, 100)[0])
    out = out.convert("RGB")
    assert is_close(out.getpixel((25, 25)), RED, 2)
    assert is_close(out.getpixel((75, 25)), GREEN, 2)
    assert is_close(out.getpixel((25, 75)), BLUE, 2)
    assert is_close(out.getpixel((75, 75)), WHITE, 2)


def test_large_jpeg_downscale_keeps_the_centre() -> None:
    # Big enough that the JPEG is decoded at a reduced DCT scale before resampling.
    data = encoded(bands((1200, 400), [RED, GREEN, BLUE], vertical=True), "jpg")
    out = open_bytes(resize(from_bytes(data), 40, 40)[0]).convert("RGB")
    assert is_close(out.getpixel((20, 20)), GREEN)
    assert _fraction_close(out, GREEN) >= 0.9


# --- resize: output format -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_resize_keeps_format(fmt: str) -> None:
    out, image = resize(from_bytes(encoded(gradient((80, 60)), fmt)), 33, 21)
    reopened = open_bytes(out)
    assert reopened.format == PILLOW_NAME[fmt]
    assert reopened.size == (33, 21)
    assert (image.format, image.width, image.height) == (fmt, 33, 21)
    assert image.byte_size == len(out)
    # The description of the result matches what from_bytes says of its bytes.
    again = from_bytes(out)
    assert (again.format, again.width, again.height, again.byte_size) == (fmt, 33, 21, len(out))


@pytest.mark.parametrize("fmt", FORMATS)
def test_resized_image_can_be_resized_again(fmt: str) -> None:
    source = quadrants((80, 60))
    _, first = resize(from_bytes(encoded(source, fmt)), 40, 30)
    out, second = resize(first, 20, 10)
    reopened = open_bytes(out)
    assert reopened.format == PILLOW_NAME[fmt]
    assert reopened.size == (20, 10)
    assert (second.format, second.width, second.height, second.byte_size) == (
        fmt,
        20,
        10,
        len(out),
    )
    # Still the same picture: the 4:3 -> 2:1 crop keeps the quadrants' corners.
    rgb = reopened.convert("RGB")
    assert is_close(rgb.getpixel((1, 1)), RED, 60)
    assert is_close(rgb.getpixel((18, 8)), WHITE, 60)


def test_animated_gif_starts_with_its_first_frame() -> None:
    # Whether later frames are kept or dropped, the picture shown first is frame 0.
    frames = [PILImage.new("RGB", (30, 20), c) for c in (RED, GREEN, BLUE)]
    data = encoded(frames[0], "gif", save_all=True, append_images=frames[1:])
    out = open_bytes(resize(from_bytes(data), 15, 10)[0])
    assert out.size == (15, 10)
    assert is_close(out.convert("RGB").getpixel((7, 5)), RED, 2)


# --- resize: EXIF orientation ----------------------------------------------------------------


# Where a pixel stored in the top-left / top-right corner is displayed, per the EXIF
# spec's description of each Orientation value (where row 0 and column 0 are shown).
DISPLAYED_AT: dict[int, tuple[str, str]] = {
    1: ("tl", "tr"),
    2: ("tr", "tl"),  # mirrored left-right
    3: ("br", "bl"),  # rotated 180
    4: ("bl", "br"),  # mirrored top-bottom
    5: ("tl", "bl"),  # transposed (row 0 shown as the left column)
    6: ("tr", "br"),  # rotated 90 degrees clockwise to display
    7: ("br", "tr"),  # transversed
    8: ("bl", "tl"),  # rotated 90 degrees counter-clockwise to display
}


def marked_landscape() -> PILImage.Image:
    """60x40 blue, with a red block in the stored top-left and a green one top-right."""
    im = PILImage.new("RGB", (60, 40), BLUE)
    im.paste(RED, (0, 0, 20, 14))
    im.paste(GREEN, (40, 0, 60, 14))
    return im


def corner_of(im: PILImage.Image, colour: tuple[int, int, int]) -> list[str]:
    width, height = im.size
    probes = {
        "tl": (3, 3),
        "tr": (width - 4, 3),
        "bl": (3, height - 4),
        "br": (width - 4, height - 4),
    }
    rgb = im.convert("RGB")
    return [name for name, xy in probes.items() if is_close(rgb.getpixel(xy), colour, 60)]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpg", "webp", "png", "tiff"])
def test_exif_orientation_comes_out_upright(fmt: str, orientation: int) -> None:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    data = encoded(marked_landscape(), fmt, exif=exif.tobytes())
    # Upright, orientations 5-8 are portrait; ask for exactly that size (no crop).
    target = (40, 60) if orientation >= 5 else (60, 40)
    out = open_bytes(resize(from_bytes(data), *target)[0])
    assert out.size == target
    red_at, green_at = DISPLAYED_AT[orientation]
    assert corner_of(out, RED) == [red_at]
    assert corner_of(out, GREEN) == [green_at]
    # The pixels are upright now; a tag saying otherwise would rotate them again.
    assert out.getexif().get(0x0112, 1) == 1


def test_orientation_applies_before_the_crop() -> None:
    # Stored 60x40 and tagged 6, it is displayed 40x60 with the markers along the right
    # edge, top and bottom. A 40x20 fill takes the display's middle rows: background only.
    # Cropping the stored landscape instead would keep the markers in the top corners.
    exif = PILImage.Exif()
    exif[0x0112] = 6
    data = encoded(marked_landscape(), "jpg", exif=exif.tobytes())
    out = open_bytes(resize(from_bytes(data), 40, 20)[0])
    assert corner_of(out, BLUE) == ["tl", "tr", "bl", "br"]


# The reference path for pixel checks: every pixel decoded (no draft), turned upright,
# then one LANCZOS resample of the planned box. A thumbnail may differ from it only by
# DCT-scaled decoding and the box-filter pre-reduction. Threshold: the worst channel's
# mean absolute difference must stay below 3 (of 255); measured 0.0-0.7 on the bench
# photos, while the wrong crop box scores above 10 (test_reference_check_notices_a_wrong_crop).
REFERENCE_MAD = 3.0


# The default bilinear filter is compared with the same LANCZOS reference, so it is
# allowed the gap between the two filters as well (measured <= 4.6 on the bench photos).
FILTER_MAD = {"lanczos": REFERENCE_MAD, "bilinear": 7.0}


def rgb_pixels(im: PILImage.Image) -> list[tuple[int, ...]]:
    """Every pixel as an RGB tuple (getdata() is deprecated in recent Pillow)."""
    raw = im.convert("RGB").tobytes()
    return [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]


def colours_in(im: PILImage.Image, palette: dict[str, tuple[int, int, int]]) -> set[str]:
    """Which of the named colours occur (within 40) in at least 2% of the pixels."""
    counts = dict.fromkeys(palette, 0)
    for pixel in rgb_pixels(im):
        for name, colour in palette.items():
            if is_close(pixel, colour):
                counts[name] += 1
    total = im.width * im.height
    return {name for name, n in counts.items() if n >= 0.02 * total}


def reference(data: bytes, width: int, height: int, fit: str, gravity: object) -> PILImage.Image:
    """The slow, obviously right thumbnail (see REFERENCE_MAD)."""
    im = ImageOps.exif_transpose(open_bytes(data)).convert("RGB")
    p = geometry.plan(im.size, (width, height), fit, gravity=gravity)  # type: ignore[arg-type]
    return im.resize(p.size, PILImage.Resampling.LANCZOS, box=p.box)


# --- thumbnail: geometry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fit", "target", "expected"),
    [
        ("fill", (100, 100), (100, 100)),
        ("contain", (100, 100), (100, 50)),
        ("cover", (100, 100), (200, 100)),
        ("exact", (100, 100), (100, 100)),
        ("fill", (30, 90), (30, 90)),
        ("contain", (30, 90), (30, 15)),
        ("cover", (30, 90), (180, 90)),
        ("exact", (500, 7), (500, 7)),
    ],
    ids=str,
)
def test_thumbnail_sizes(fit: str, target: tuple[int, int], expected: tuple[int, int]) -> None:
    data = encoded(gradient((400, 200)), "png")
    for source in (data, from_bytes(data)):
        out, image = thumbnail(source, *target, fit=fit)  # type: ignore[arg-type]
        assert open_bytes(out).size == expected
        assert (image.width, image.height, image.byte_size) == (*expected, len(out))
        assert (image.format, image.orientation, image.frames) == ("png", 1, 1)


PALETTE3 = {"red": RED, "green": GREEN, "blue": BLUE}


@pytest.mark.parametrize(
    ("gravity", "wide", "tall"),
    [
        # Fill crops a wide source left-right (x of the gravity) and a tall one
        # top-bottom (y); bands are red, green, blue from left / top.
        ("center", "green", "green"),
        ("north", "green", "red"),
        ("south", "green", "blue"),
        ("east", "blue", "green"),
        ("west", "red", "green"),
        ("north_east", "blue", "red"),
        ("north_west", "red", "red"),
        ("south_east", "blue", "blue"),
        ("south_west", "red", "blue"),
        ((0.0, 1.0), "red", "blue"),
        ((0.5, 0.0), "green", "red"),
    ],
    ids=str,
)
def test_fill_gravity_keeps_the_right_band(gravity: object, wide: str, tall: str) -> None:
    for vertical, expected in ((True, wide), (False, tall)):
        size = (300, 100) if vertical else (100, 300)
        data = encoded(bands(size, [RED, GREEN, BLUE], vertical=vertical), "png")
        out = open_bytes(thumbnail(data, 50, 50, gravity=gravity)[0])  # type: ignore[arg-type]
        assert out.size == (50, 50)
        assert colours_in(out, PALETTE3) == {expected}, (gravity, vertical)


@pytest.mark.parametrize(("x", "band"), [(0.0, 0), (1 / 3, 1), (2 / 3, 2), (1.0, 3)])
def test_fill_gravity_pairs_select_exact_crops(x: float, band: int) -> None:
    # 400x100 with four 100-wide bands into 100x100: left = 300 * x, exactly one band.
    colours = [RED, GREEN, BLUE, WHITE]
    data = encoded(bands((400, 100), colours, vertical=True), "png")
    out = open_bytes(thumbnail(data, 100, 100, gravity=(x, 0.5), filter="nearest")[0])
    assert set(rgb_pixels(out)) == {colours[band]}


@pytest.mark.parametrize("fit", ["contain", "cover", "exact"])
def test_uncropped_fits_keep_every_band(fit: str) -> None:
    data = encoded(bands((300, 100), [RED, GREEN, BLUE], vertical=True), "png")
    for gravity in ("west", "east"):
        out = open_bytes(thumbnail(data, 60, 60, fit=fit, gravity=gravity)[0])  # type: ignore[arg-type]
        assert colours_in(out, PALETTE3) == {"red", "green", "blue"}
        third = out.width // 3
        y = out.height // 2
        assert is_close(rgb_at(out, (third // 2, y)), RED, 2)
        assert is_close(rgb_at(out, (out.width - 1 - third // 2, y)), BLUE, 2)


def test_fill_crop_of_quadrants_is_exact_with_nearest() -> None:
    # 200x100 quadrants into 50x50 with gravity west: the left 100x100 only.
    data = encoded(quadrants((200, 100)), "png")
    out = open_bytes(thumbnail(data, 50, 50, gravity="west", filter="nearest")[0])
    expected = quadrants((200, 100)).crop((0, 0, 100, 100)).resize((50, 50), 0)
    assert out.convert("RGB").tobytes() == expected.tobytes()
    assert rgb_at(out, (10, 10)) == RED and rgb_at(out, (40, 40)) == BLUE


@pytest.mark.parametrize("fit", ["fill", "contain", "cover", "exact"])
@pytest.mark.parametrize("target", [(200, 200), (80, 300), (10, 10)], ids=str)
def test_upscale_false_never_enlarges(fit: str, target: tuple[int, int]) -> None:
    data = encoded(gradient((100, 60)), "png")
    out, image = thumbnail(data, *target, fit=fit, upscale=False)  # type: ignore[arg-type]
    size = open_bytes(out).size
    assert size == (image.width, image.height)
    assert size[0] <= 100 and size[1] <= 60
    assert size == geometry.plan((100, 60), target, fit, upscale=False).size  # type: ignore[arg-type]
    if fit in ("fill", "exact"):
        assert size[0] <= target[0] and size[1] <= target[1]


@pytest.mark.parametrize("name", ["nearest", "bilinear", "bicubic", "lanczos"])
def test_filters_resample_as_named(name: str) -> None:
    # Each filter gives exactly Pillow's resize with that filter when nothing else
    # (no draft, no reduction: a 2x shrink of a PNG) is involved.
    im = gradient((64, 48))
    out = open_bytes(thumbnail(encoded(im, "png"), 32, 24, filter=name)[0])  # type: ignore[arg-type]
    filters = {"nearest": 0, "bilinear": 2, "bicubic": 3, "lanczos": 1}
    expected = im.resize((32, 24), PILImage.Resampling(filters[name]))
    assert mean_abs_diff(out, expected) < 0.5


def test_quality_and_format_options() -> None:
    data = encoded(gradient((200, 150)), "png")
    small = thumbnail(data, 100, 75, format="jpg", quality=20)[0]
    large = thumbnail(data, 100, 75, format="jpg", quality=95)[0]
    assert open_bytes(small).format == open_bytes(large).format == "JPEG"
    assert len(small) < len(large)
    out, image = thumbnail(data, 100, 75, format="webp")
    assert (open_bytes(out).format, image.format) == ("WEBP", "webp")


def test_thumbnail_output_keep_matches_thumbnail() -> None:
    data = encoded(gradient((120, 80)), "jpg")
    encoded_out, image = thumbnail(data, 30, 30, output=keep)
    with encoded_out:
        assert encoded_out.to_bytes() == thumbnail(data, 30, 30)[0]
        assert image.byte_size == len(encoded_out)


def test_thumbnail_of_held_image_equals_thumbnail_of_its_bytes() -> None:
    out, held = thumbnail(encoded(gradient((160, 120)), "png"), 80, 60)
    assert thumbnail(held, 40, 30)[0] == thumbnail(out, 40, 30)[0]


# --- thumbnail: EXIF orientation ---------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_thumbnail_turns_upright(orientation: int) -> None:
    # At the full upright size nothing is resampled, so the pixels must match exactly.
    data = encoded(marked((60, 40)), "png", exif=exif_bytes(orientation))
    target = (40, 60) if orientation >= 5 else (60, 40)
    out, image = thumbnail(data, *target)
    expected = upright(marked((60, 40)), orientation)
    got = open_bytes(out)
    assert got.size == target and (image.width, image.height) == target
    assert got.convert("RGB").tobytes() == expected.tobytes()
    assert image.orientation == 1 and tag_of(out) in (None, 1)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_swapped_orientations_shrink_first_and_turn_the_small_result(
    orientation: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stored 600x400, shown 400x600. A 100x150 thumbnail must resample the stored
    # pixels straight to 150x100 (the target box swapped) and turn only that.
    data = encoded(gradient((600, 400)), "jpg", exif=exif_bytes(orientation))
    resized: list[tuple[int, int]] = []
    turned: list[tuple[int, int]] = []
    original_resize, original_transpose = PILImage.Image.resize, PILImage.Image.transpose

    def spy_resize(self, size, *args, **kwargs):  # type: ignore[no-untyped-def]
        resized.append(tuple(size))
        return original_resize(self, size, *args, **kwargs)

    def spy_transpose(self, method):  # type: ignore[no-untyped-def]
        turned.append(self.size)
        return original_transpose(self, method)

    monkeypatch.setattr(PILImage.Image, "resize", spy_resize)
    monkeypatch.setattr(PILImage.Image, "transpose", spy_transpose)
    out, image = thumbnail(data, 100, 150)
    assert resized == [(150, 100)]
    assert turned == [(150, 100)]
    assert (image.width, image.height) == (100, 150)
    assert open_bytes(out).size == (100, 150)


def test_auto_orient_false_keeps_the_stored_geometry() -> None:
    data = encoded(marked((60, 40)), "png", exif=exif_bytes(6))
    out, image = thumbnail(data, 30, 20, auto_orient=False, filter="nearest")
    assert (image.width, image.height, image.orientation) == (30, 20, 6)
    assert open_bytes(out).size == (30, 20)
    assert tag_of(out) == 6  # still displayed upright by a viewer
    expected = upright(marked((60, 40)).resize((30, 20), PILImage.Resampling.NEAREST), 6)
    assert displayed(out).convert("RGB").tobytes() == expected.tobytes()
    # Without EXIF in the output format the pixels are turned instead.
    gif, _ = thumbnail(data, 30, 20, auto_orient=False, filter="nearest", format="gif")
    assert open_bytes(gif).size == (20, 30)
    assert open_bytes(gif).convert("RGB").tobytes() == expected.tobytes()


# --- thumbnail: JPEG draft ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    # 2400x1600 with detail at every scale (noise over a gradient), like a photo.
    noise = PILImage.effect_noise((2400, 1600), 40).convert("RGB")
    photo = PILImage.blend(gradient((240, 160)).resize((2400, 1600)), noise, 0.3)
    return encode(photo, "JPEG", quality=90)


@pytest.fixture
def drafts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[int, int]]]:
    """Records each JPEG draft request and the size every decode_frames call sees
    (or mirage.jpegdc decodes, at 1/8 scale, instead of Pillow)."""
    seen: dict[str, list[tuple[int, int]]] = {"requested": [], "decoded": []}
    original_draft = JpegImagePlugin.JpegImageFile.draft
    original_decode = codec.decode_frames
    original_eighth = jpegdc.decode

    def spy_eighth(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = original_eighth(*args, **kwargs)
        if result is not None:
            seen["requested"].append(result.size)
            seen["decoded"].append(result.size)
        return result

    def spy_draft(self, mode, size):  # type: ignore[no-untyped-def]
        seen["requested"].append(tuple(size))
        return original_draft(self, mode, size)

    def spy_decode(im, count):  # type: ignore[no-untyped-def]
        seen["decoded"].append(im.size)
        return original_decode(im, count)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy_draft)
    monkeypatch.setattr(codec, "decode_frames", spy_decode)
    monkeypatch.setattr(jpegdc, "decode", spy_eighth)
    return seen


@pytest.mark.parametrize(
    ("target", "decoded"),
    [((100, 100), (300, 200)), ((150, 150), (300, 200)), ((300, 300), (600, 400))],
    ids=str,
)
def test_large_jpeg_is_drafted(
    big_jpeg: bytes,
    drafts: dict[str, list[tuple[int, int]]],
    target: tuple[int, int],
    decoded: tuple[int, int],
) -> None:
    # The default bilinear filter: the largest DCT scale that still covers the output.
    out, image = thumbnail(big_jpeg, *target)
    assert drafts["requested"] and drafts["decoded"] == [decoded]
    assert open_bytes(out).size == target == (image.width, image.height)


@pytest.mark.parametrize("filter_", ["bicubic", "lanczos"])
def test_quality_filters_keep_twice_the_pixels(
    big_jpeg: bytes, drafts: dict[str, list[tuple[int, int]]], filter_: str
) -> None:
    # 1/8 (300x200) would cover 150x150 too, but leaves less than 2x for the filter.
    thumbnail(big_jpeg, 150, 150, filter=filter_)  # type: ignore[arg-type]
    assert drafts["decoded"] == [(600, 400)]


@pytest.mark.parametrize(
    ("target", "fit"), [((1201, 800), "exact"), ((1201, 800), "fill"), ((2400, 1600), "contain")]
)
def test_no_draft_when_the_output_needs_full_resolution(
    big_jpeg: bytes,
    drafts: dict[str, list[tuple[int, int]]],
    target: tuple[int, int],
    fit: str,
) -> None:
    out, _ = thumbnail(big_jpeg, *target, fit=fit, format="bmp")  # type: ignore[arg-type]
    assert drafts["decoded"] == [(2400, 1600)]
    assert open_bytes(out).size == target


def test_no_draft_for_held_pixels_or_other_formats(
    drafts: dict[str, list[tuple[int, int]]],
) -> None:
    _, held = thumbnail(encoded(gradient((800, 600)), "jpg"), 400, 300)
    drafts["requested"].clear()
    thumbnail(held, 50, 50)
    thumbnail(encoded(gradient((800, 600)), "png"), 50, 50)
    assert drafts["requested"] == []


def test_drafted_thumbnail_matches_the_reference(big_jpeg: bytes) -> None:
    # Decoded at 1/8 scale, then resampled: still the reference picture (REFERENCE_MAD).
    for target, fit, gravity in (((100, 100), "fill", "east"), ((200, 150), "contain", "center")):
        out, _ = thumbnail(
            big_jpeg, *target, fit=fit, gravity=gravity, filter="lanczos", format="png"
        )  # type: ignore[arg-type]
        ref = reference(big_jpeg, *target, fit, gravity)
        assert mean_abs_diff(open_bytes(out), ref) < REFERENCE_MAD


# --- thumbnail: pixels against the reference on real photographs -------------------------------


@requires_bench
@pytest.mark.parametrize(
    ("target", "fit", "gravity"),
    [
        ((64, 64), "fill", "center"),  # drafted at 1/2
        ((100, 100), "fill", "west"),
        ((200, 200), "fill", "east"),
        ((100, 300), "fill", (0.2, 0.5)),
        ((300, 300), "contain", "center"),
        ((150, 150), "cover", "center"),
        ((320, 100), "exact", "center"),
        ((32, 32), "fill", "north_east"),
    ],
    ids=str,
)
@pytest.mark.parametrize("filter_", ["lanczos", "bilinear"])
def test_rocket_matches_the_reference(
    target: tuple[int, int], fit: str, gravity: object, filter_: str
) -> None:
    data = bench_bytes("real_rocket_640x427.jpg")
    out, image = thumbnail(data, *target, fit=fit, gravity=gravity, filter=filter_, format="png")  # type: ignore[arg-type]
    ref = reference(data, *target, fit, gravity)
    assert (image.width, image.height) == ref.size
    assert mean_abs_diff(open_bytes(out), ref) < FILTER_MAD[filter_]


@requires_bench
def test_reference_check_notices_a_wrong_crop() -> None:
    # The threshold has teeth: the west crop compared with the east reference fails.
    data = bench_bytes("real_rocket_640x427.jpg")
    out, _ = thumbnail(data, 100, 100, gravity="west", filter="lanczos", format="png")
    assert mean_abs_diff(open_bytes(out), reference(data, 100, 100, "fill", "east")) > 10


@requires_bench
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_oriented_photo_matches_the_reference(orientation: int) -> None:
    # The rocket re-saved with an orientation tag: the fast path (draft, stored box,
    # turn at the end) against decode + exif_transpose + LANCZOS.
    rocket = open_bytes(bench_bytes("real_rocket_640x427.jpg"))
    data = encode(rocket, "JPEG", quality=95, exif=exif_bytes(orientation))
    for target, gravity in (((100, 100), "north"), ((60, 150), "south_east")):
        out, _ = thumbnail(data, *target, gravity=gravity, filter="lanczos", format="png")
        ref = reference(data, *target, "fill", gravity)
        assert mean_abs_diff(open_bytes(out), ref) < REFERENCE_MAD


@requires_bench
def test_twelve_megapixel_photo(drafts: dict[str, list[tuple[int, int]]]) -> None:
    data = bench_bytes("photo_12mp.jpg")
    out, image = thumbnail(data, 300, 300, filter="lanczos", format="png")
    assert drafts["decoded"] == [(1000, 750)]  # 1/4 scale: 750 >= 2 x 300, 1/8 would not be
    assert (image.width, image.height) == (300, 300)
    assert mean_abs_diff(open_bytes(out), reference(data, 300, 300, "fill", "center")) < (
        REFERENCE_MAD
    )


# --- resize ------------------------------------------------------------------------------------


def test_resize_is_fill_and_takes_thumbnail_options() -> None:
    data = encoded(bands((300, 100), [RED, GREEN, BLUE], vertical=True), "png")
    image = from_bytes(data)
    out, result = resize(image, 50, 50)
    assert open_bytes(out).size == (50, 50)
    assert colours_in(open_bytes(out), PALETTE3) == {"green"}
    out, _ = resize(image, 50, 50, gravity="east")
    assert colours_in(open_bytes(out), PALETTE3) == {"blue"}
    out, result = resize(image, 60, 60, fit="contain", format="gif")
    assert (open_bytes(out).format, open_bytes(out).size) == ("GIF", (60, 20))
    assert (result.format, result.width, result.height) == ("gif", 60, 20)
    assert (
        resize(image, 50, 50, filter="nearest")[0] == thumbnail(image, 50, 50, filter="nearest")[0]
    )


def test_resize_needs_an_image() -> None:
    with pytest.raises(TypeError):
        resize(encoded(gradient((10, 10)), "png"), 5, 5)  # type: ignore[arg-type]
