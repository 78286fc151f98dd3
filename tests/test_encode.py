"""mirage.image: to_bytes and the outputs of every operation (formats, options, strip,
pixel modes), and formats()."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from mirage import codec
from mirage.errors import TooManyPixels
from mirage.formats import DEFAULT_ALLOWED, FORMATS, PILLOW_NAME
from mirage.image import auto_orient, crop, formats, from_bytes, resize, thumbnail, to_bytes
from tests.conftest import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    displayed,
    encode,
    exif_bytes,
    gradient,
    is_close,
    open_bytes,
    quadrants,
)
from tests.imaging import _png_with_exif_after_idat, encoded, marked, rgb_at

# --- pixel modes -------------------------------------------------------------------------------


def test_rgba_png_keeps_alpha() -> None:
    im = PILImage.new("RGBA", (40, 40), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (0, 0, 20, 40))  # left half fully transparent
    out = open_bytes(resize(from_bytes(encoded(im, "png")), 20, 20)[0])
    assert out.mode == "RGBA"
    assert out.getpixel((3, 10))[3] == 0
    assert out.getpixel((16, 10)) == (255, 0, 0, 255)


@pytest.mark.parametrize("fmt", ["png", "gif"])
def test_palette_with_transparency_keeps_it(fmt: str) -> None:
    im = PILImage.new("P", (40, 40), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (3 * 254))
    im.paste(0, (0, 0, 20, 40))
    data = encoded(im, fmt, transparency=0)
    out = open_bytes(resize(from_bytes(data), 20, 20)[0])
    if fmt == "png":
        # Palette pixels are resampled as RGBA, so PNG output is truecolour with alpha.
        assert out.mode == "RGBA"
    rgba = out.convert("RGBA")
    assert rgba.getpixel((3, 10))[3] == 0
    assert rgba.getpixel((16, 10)) == (255, 0, 0, 255)


def test_palette_without_transparency_has_no_alpha() -> None:
    im = gradient((40, 40)).convert("P")
    out = open_bytes(resize(from_bytes(encoded(im, "png")), 20, 20)[0])
    assert out.mode == "RGB"


def test_sixteen_bit_png_stays_sixteen_bit() -> None:
    im = PILImage.new("I;16", (64, 64))
    im.putdata([(x + y) * 500 for y in range(64) for x in range(64)])  # up to 63000
    data = encoded(im, "png")
    out = open_bytes(resize(from_bytes(data), 32, 32)[0])
    assert out.format == "PNG"
    assert out.mode in ("I;16", "I")
    low, high = out.getextrema()
    # Values beyond 8 bits survive: the data was not squeezed to 0..255.
    assert low < 2000 and high > 60000


def test_cmyk_jpeg_stays_cmyk_jpeg() -> None:
    colour = (200, 50, 30)
    im = PILImage.new("RGB", (80, 60), colour).convert("CMYK")
    out = open_bytes(resize(from_bytes(encoded(im, "jpg")), 40, 30)[0])
    assert (out.format, out.mode, out.size) == ("JPEG", "CMYK", (40, 30))
    assert is_close(out.convert("RGB").getpixel((20, 15)), colour, 8)


def test_grayscale_jpeg_stays_grayscale() -> None:
    im = gradient((64, 48)).convert("L")
    out = open_bytes(resize(from_bytes(encoded(im, "jpg")), 32, 24)[0])
    assert (out.format, out.mode) == ("JPEG", "L")


def test_lab_tiff_is_not_made_transparent() -> None:
    lab = encoded(PILImage.new("RGB", (40, 30), (200, 30, 30)).convert("LAB"), "tiff")
    out = open_bytes(resize(from_bytes(lab), 10, 10)[0])
    assert "A" not in out.getbands() or out.getchannel("A").getextrema() == (255, 255)


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tiff"])
def test_icc_profile_is_kept(fmt: str) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(gradient((40, 30)), fmt, icc_profile=profile)
    out = open_bytes(resize(from_bytes(data), 20, 15)[0])
    assert out.info.get("icc_profile") == profile


# --- to_bytes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_png() -> bytes:
    noise = PILImage.effect_noise((160, 120), 60).convert("RGB")
    return encode(PILImage.blend(gradient((160, 120)), noise, 0.4), "PNG")


def test_to_bytes_default_format_is_the_images(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    assert open_bytes(to_bytes(image)).format == "PNG"
    assert open_bytes(to_bytes(crop(image, 0, 0, 10, 10))).format == "PNG"


def test_progressive_jpeg(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    baseline = to_bytes(image, format="jpg")
    progressive = to_bytes(image, format="jpg", progressive=True)
    assert b"\xff\xc0" in baseline and b"\xff\xc2" not in baseline
    assert b"\xff\xc2" in progressive  # SOF2
    assert open_bytes(progressive).info.get("progressive") == 1


def test_optimize_and_quality(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    pixels = open_bytes(photo_png)
    # Exactly Pillow's output for the same pixels and settings.
    assert to_bytes(image, format="jpg", optimize=True) == encode(
        pixels, "JPEG", quality=85, optimize=True
    )
    assert to_bytes(image, format="jpg", quality=30) == encode(pixels, "JPEG", quality=30)
    assert len(to_bytes(image, format="jpg", quality=30)) < len(to_bytes(image, format="jpg"))
    assert len(to_bytes(image, format="png", optimize=True)) <= len(to_bytes(image, format="png"))


def test_webp_lossless_is_vp8l(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    lossless = to_bytes(image, format="webp", lossless=True)
    lossy = to_bytes(image, format="webp")
    assert lossless[12:16] == b"VP8L" and lossy[12:16] == b"VP8 "
    assert open_bytes(lossless).convert("RGB").tobytes() == open_bytes(photo_png).tobytes()


def test_png_compress_level(photo_png: bytes) -> None:
    image = from_bytes(photo_png)
    stored = to_bytes(image, compress_level=0)
    best = to_bytes(image, compress_level=9)
    assert len(stored) > 160 * 120 * 3  # level 0 stores the raw rows
    assert len(best) < len(stored) * 0.9
    assert open_bytes(stored).tobytes() == open_bytes(best).tobytes()


@pytest.fixture(scope="module")
def profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def camera_jpeg(profile: bytes) -> bytes:
    """A camera-like JPEG: orientation 6, Make/Model, ICC, XMP and a comment."""
    return encode(
        marked((60, 40)),
        "JPEG",
        quality=95,
        exif=exif_bytes(6, Make="Acme", Model="Cam 1"),
        icc_profile=profile,
        xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret</x:xmpmeta>",
        comment=b"taken at home",
    )


@pytest.mark.parametrize("fmt", codec.EXIF_FORMATS)
def test_strip_keeps_only_orientation_and_profile(
    camera_jpeg: bytes, profile: bytes, fmt: str
) -> None:
    out = to_bytes(from_bytes(camera_jpeg), format=fmt)
    reopened = PILImage.open(io.BytesIO(out))
    tags = dict(reopened.getexif())
    if fmt == "tiff":
        # A TIFF's own layout tags (size, strips, compression) live in the same IFD.
        plain = PILImage.open(
            io.BytesIO(to_bytes(auto_orient(from_bytes(camera_jpeg)), format=fmt))
        )
        tags = {k: v for k, v in tags.items() if k not in plain.getexif() or k == 0x0112}
    assert tags == {0x0112: 6}
    assert reopened.info.get("icc_profile") == profile
    assert "xmp" not in reopened.info and "comment" not in reopened.info
    assert b"secret" not in out and b"Acme" not in out


@pytest.mark.parametrize("fmt", codec.EXIF_FORMATS)
def test_strip_false_keeps_the_source_exif(camera_jpeg: bytes, profile: bytes, fmt: str) -> None:
    image = from_bytes(camera_jpeg)
    exif = PILImage.open(io.BytesIO(to_bytes(image, format=fmt, strip=False))).getexif()
    assert (exif.get(0x010F), exif.get(0x0110), exif.get(0x0112)) == ("Acme", "Cam 1", 6)
    # Once the pixels are upright the kept EXIF must not say otherwise.
    for result in (auto_orient(image), thumbnail(image, 20, 30)[1]):
        out = to_bytes(result, format=fmt, strip=False)
        exif = PILImage.open(io.BytesIO(out)).getexif()
        assert exif.get(0x010F) == "Acme" and exif.get(0x0112, 1) == 1
        assert displayed(out).size == (result.width, result.height)


def test_thumbnail_strip_option(camera_jpeg: bytes) -> None:
    stripped = PILImage.open(io.BytesIO(thumbnail(camera_jpeg, 20, 30)[0])).getexif()
    kept = PILImage.open(io.BytesIO(thumbnail(camera_jpeg, 20, 30, strip=False)[0])).getexif()
    assert 0x010F not in stripped and stripped.get(0x0112, 1) == 1
    assert kept.get(0x010F) == "Acme" and kept.get(0x0112, 1) == 1


@pytest.mark.parametrize("source", ["tiff", "png-exif-after-idat"])
def test_strip_false_keeps_exif_found_outside_the_header(source: str) -> None:
    if source == "tiff":
        data = encode(gradient((30, 20)), "TIFF", exif=exif_bytes(6, Make="Acme"))
    else:
        data = _png_with_exif_after_idat(exif_bytes(6, Make="Acme"))
    image = from_bytes(data)
    assert image.orientation == 6  # the orientation itself is found
    exif = PILImage.open(io.BytesIO(to_bytes(image, format="jpg", strip=False))).getexif()
    assert (exif.get(0x0112), exif.get(0x010F)) == (6, "Acme")


@pytest.mark.parametrize("target", FORMATS)
@pytest.mark.parametrize("source", FORMATS)
def test_every_format_round_trips(source: str, target: str) -> None:
    src = quadrants((40, 30))
    out = to_bytes(from_bytes(encoded(src, source)), format=target)
    got = open_bytes(out)
    assert (got.format, got.size) == (PILLOW_NAME[target], (40, 30))
    assert from_bytes(out).format == target
    for xy, colour in (((10, 7), RED), ((30, 7), GREEN), ((10, 22), BLUE), ((30, 22), WHITE)):
        assert is_close(rgb_at(got, xy), colour, 12), (xy, rgb_at(got, xy))
    if source in ("png", "gif", "bmp", "tiff") and target in ("png", "gif", "bmp", "tiff"):
        assert got.convert("RGB").tobytes() == src.tobytes()


def test_rgba_to_jpeg_drops_alpha() -> None:
    src = PILImage.new("RGBA", (20, 20), (200, 30, 30, 255))
    src.paste((0, 0, 0, 0), (0, 0, 10, 20))
    got = open_bytes(to_bytes(from_bytes(encoded(src, "png")), format="jpg"))
    assert got.mode == "RGB"
    assert is_close(rgb_at(got, (15, 10)), (200, 30, 30), 10)


def test_sixteen_bit_png_to_png_is_untouched() -> None:
    src = PILImage.new("I;16", (64, 64))
    src.putdata([(x + y) * 500 for y in range(64) for x in range(64)])
    got = open_bytes(to_bytes(from_bytes(encoded(src, "png"))))
    assert got.mode == "I;16"
    assert got.tobytes() == src.tobytes()


@pytest.mark.parametrize("fmt", ["jpg", "webp", "gif", "bmp"])
def test_sixteen_bit_png_to_eight_bit_formats_is_scaled(fmt: str) -> None:
    src = PILImage.new("I;16", (64, 64))
    src.putdata([(x + y) * 500 for y in range(64) for x in range(64)])  # 0..63000
    got = open_bytes(to_bytes(from_bytes(encoded(src, "png")), format=fmt)).convert("L")
    mean = sum(got.tobytes()) / (64 * 64)
    # Scaled to 8 bits the mean is about 63 * 500 / 257 = 123; clipped it is 255.
    assert 100 < mean < 145


@pytest.mark.parametrize("fmt", ["png", "tiff", "webp", "jpg"])
def test_lab_does_not_become_transparent(fmt: str) -> None:
    lab = encoded(PILImage.new("RGB", (40, 30), (200, 30, 30)).convert("LAB"), "tiff")
    got = open_bytes(to_bytes(from_bytes(lab), format=fmt))
    assert "A" not in got.getbands() or got.getchannel("A").getextrema() == (255, 255)
    assert is_close(rgb_at(got, (20, 15)), (200, 30, 30), 12)


def test_to_bytes_budget_and_unknown_format() -> None:
    image = from_bytes(encoded(gradient((100, 100)), "png"))
    with pytest.raises(TooManyPixels):
        to_bytes(image, max_pixels=9_999)
    with pytest.raises(ValueError):
        to_bytes(image, format="heic")


# --- formats -----------------------------------------------------------------------------------


def test_formats_lists_read_write_allowed() -> None:
    got = formats()
    assert set(got) == {"read", "write", "allowed"}
    assert got["read"] == codec.readable() and got["write"] == codec.writable()
    assert got["allowed"] == [f for f in DEFAULT_ALLOWED if f in got["read"]]
    assert set(got["allowed"]) <= set(got["read"]) <= set(FORMATS)
    # Every format said to be written really is written, and read back.
    for fmt in got["write"]:
        out = to_bytes(from_bytes(encoded(gradient((8, 8)), "png")), format=fmt)
        if fmt in got["read"]:
            assert from_bytes(out).format == fmt
